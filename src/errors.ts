/**
 * Tagwarden's one error family. Every error carries a stable `code` (`TW_ERR_*`), an HTTP
 * status for when it reaches a client, and `retryable`: whether repeating the same operation
 * later can succeed (the convention of undici's and fastify's error codes). `docs/errors.md`
 * lists every class; `src/errors.test.ts` keeps the two in sync.
 *
 * A deliberate drop (consent denied, integrations disabled, ...) is NOT an error: it is a policy
 * outcome with a reason. Errors are for things that went wrong.
 */
export class TagwardenError extends Error {
  readonly code: string = 'TW_ERR_INTERNAL';
  readonly status: number = 500;
  readonly retryable: boolean = false;
  readonly details: unknown;
  /** Seconds a client should wait before trying again, sent as `Retry-After` when the error is answered. */
  readonly retryAfterS: number | undefined;

  constructor(message: string, options?: { details?: unknown; cause?: unknown; retryAfterS?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.details = options?.details;
    this.retryAfterS = options?.retryAfterS;
  }
}

/** Unexpected failure inside Tagwarden. Not retried by Tagwarden; a client may try again. */
export class InternalError extends TagwardenError {}

/** The configuration file is missing, unreadable or invalid, or names a port or host that cannot be had. Not retried: fix the file. */
export class ConfigError extends TagwardenError {
  override readonly code = 'TW_ERR_CONFIG';
}

/** A request body or parameter failed validation. Not retried: the input must change. */
export class ValidationError extends TagwardenError {
  override readonly code = 'TW_ERR_VALIDATION';
  override readonly status = 400;
}

/** The body is not parseable (bad JSON, bad encoding). Not retried. */
export class MalformedBodyError extends TagwardenError {
  override readonly code = 'TW_ERR_MALFORMED_BODY';
  override readonly status = 400;
}

/** The body exceeds the route's size limit. Not retried: the same body is always too large. */
export class PayloadTooLargeError extends TagwardenError {
  override readonly code = 'TW_ERR_PAYLOAD_TOO_LARGE';
  override readonly status = 413;
}

/** The request headers exceed the server's limit. Not retried. */
export class HeadersTooLargeError extends TagwardenError {
  override readonly code = 'TW_ERR_HEADERS_TOO_LARGE';
  override readonly status = 431;
}

/** The request (its headers or its body) did not arrive within the server's timeouts. Retried: a client may send it again. */
export class RequestTimeoutError extends TagwardenError {
  override readonly code = 'TW_ERR_REQUEST_TIMEOUT';
  override readonly status = 408;
  override readonly retryable = true;
}

/**
 * A CSV import stopped itself before `server.requestTimeoutMs` would cut the upload: the rows before
 * `details.resumeFromRow` are stored. Retried: the rest of the file (or the whole file: stored rows
 * are duplicates) may be sent again.
 */
export class ImportIncompleteError extends TagwardenError {
  override readonly code = 'TW_ERR_IMPORT_INCOMPLETE';
  override readonly status = 408;
  override readonly retryable = true;
}

/** The route does not take this method; the answer's `Allow` header lists those it takes. Not retried. */
export class MethodNotAllowedError extends TagwardenError {
  override readonly code = 'TW_ERR_METHOD_NOT_ALLOWED';
  override readonly status = 405;
}

/** The body's content type is not accepted on this route. Not retried. */
export class UnsupportedMediaTypeError extends TagwardenError {
  override readonly code = 'TW_ERR_UNSUPPORTED_MEDIA_TYPE';
  override readonly status = 415;
}

/** No route matches. Not retried. */
export class NotFoundError extends TagwardenError {
  override readonly code = 'TW_ERR_NOT_FOUND';
  override readonly status = 404;
}

/** Missing or wrong credentials (admin key, API key). Not retried with the same credentials. */
export class UnauthorizedError extends TagwardenError {
  override readonly code = 'TW_ERR_UNAUTHORIZED';
  override readonly status = 401;
}

/** A valid API key that lacks the scope the route needs. Not retried: the key's scopes must change. */
export class ForbiddenError extends TagwardenError {
  override readonly code = 'TW_ERR_FORBIDDEN';
  override readonly status = 403;
}

/** The API key exceeded its request rate. Retried after the `Retry-After` the response carries. */
export class RateLimitedError extends TagwardenError {
  override readonly code = 'TW_ERR_RATE_LIMITED';
  override readonly status = 429;
  override readonly retryable = true;
}

/** A vendor's script origin failed, timed out or redirected (the script proxy). Retried: the upstream may recover. */
export class UpstreamError extends TagwardenError {
  override readonly code = 'TW_ERR_UPSTREAM';
  override readonly status = 502;
  override readonly retryable = true;
}

/** The Host header names a host this server is not configured for (`server.allowedHosts`). Not retried. */
export class MisdirectedRequestError extends TagwardenError {
  override readonly code = 'TW_ERR_MISDIRECTED';
  override readonly status = 421;
}

/**
 * The server is shutting down or not ready, or cannot make a hit durable now (the journal is full or
 * its commit failed): nothing was acknowledged. Retried: another instance, or this one later, can serve.
 */
export class UnavailableError extends TagwardenError {
  override readonly code = 'TW_ERR_UNAVAILABLE';
  override readonly status = 503;
  override readonly retryable = true;
}

/** The refusal of a hit or a write once shutdown began: the sender keeps it and retries elsewhere. */
export function shuttingDownError(): UnavailableError {
  return new UnavailableError('shutting down; retry on another instance');
}

/** A destination template is invalid (schema, mapping directive, settings). Not retried: fix the template. */
export class TemplateError extends TagwardenError {
  override readonly code = 'TW_ERR_TEMPLATE';
}

/**
 * Rendering one event through a template failed (a required field is missing, a transform got a
 * value it cannot convert). Not retried: the same event renders the same way.
 */
export class RenderError extends TagwardenError {
  override readonly code = 'TW_ERR_RENDER';
  override readonly status = 422;
}

/**
 * A vendor answered with a status the retry policy treats as transient (408, 429, 5xx other than
 * 501/505) or could not be reached. Retried, honouring `Retry-After`.
 */
export class DeliveryRetryableError extends TagwardenError {
  override readonly code = 'TW_ERR_DELIVERY_RETRYABLE';
  override readonly status = 502;
  override readonly retryable = true;
}

/** A vendor rejected the request for good (4xx other than 408/429, 501, 505). Not retried. */
export class DeliveryRejectedError extends TagwardenError {
  override readonly code = 'TW_ERR_DELIVERY_REJECTED';
  override readonly status = 502;
}

/**
 * A template's OAuth 2.0 token endpoint (docs/templates.md, "auth") could not give an access token
 * for now: it timed out, could not be reached, answered 408/429/5xx or an unreadable success.
 * The vendor request never left, so it is retried like a refusal.
 */
export class AuthRetryableError extends TagwardenError {
  override readonly code = 'TW_ERR_AUTH_RETRYABLE';
  override readonly status = 502;
  override readonly retryable = true;
}

/**
 * A template's OAuth 2.0 token endpoint refused the destination's credentials for good (another
 * 4xx, e.g. `invalid_grant` for a revoked refresh token): not retried, fix the settings.
 */
export class AuthRejectedError extends TagwardenError {
  override readonly code = 'TW_ERR_AUTH_REJECTED';
  override readonly status = 502;
}

/** Every class, for the docs sync test and for code-to-class look-ups. */
export const ERROR_CLASSES = [
  InternalError,
  ConfigError,
  ValidationError,
  MalformedBodyError,
  PayloadTooLargeError,
  HeadersTooLargeError,
  RequestTimeoutError,
  ImportIncompleteError,
  MethodNotAllowedError,
  UnsupportedMediaTypeError,
  NotFoundError,
  UnauthorizedError,
  ForbiddenError,
  RateLimitedError,
  UpstreamError,
  MisdirectedRequestError,
  UnavailableError,
  TemplateError,
  RenderError,
  DeliveryRetryableError,
  DeliveryRejectedError,
  AuthRetryableError,
  AuthRejectedError,
] as const;

export type ErrorClass = (typeof ERROR_CLASSES)[number];

/**
 * What an outcome that is reported rather than thrown (a delivery result, a dead letter) carries of
 * its error: the stable code and whether trying again can succeed, never a message (it could quote
 * a vendor's answer or a secret).
 */
export interface ErrorCode {
  code: string;
  retryable: boolean;
}

const codes = new Map<ErrorClass, ErrorCode>();

/** The code and retry flag of a class, read from the class itself so they are written once. */
export function errorCodeOf(C: ErrorClass): ErrorCode {
  let known = codes.get(C);
  if (known === undefined) {
    const e = new C('');
    known = Object.freeze({ code: e.code, retryable: e.retryable });
    codes.set(C, known);
  }
  return known;
}

/** A thrown value that may not be an Error (a library's `throw 'x'`), as one of the family. */
export function asError(thrown: unknown): Error {
  return thrown instanceof Error ? thrown : new InternalError(String(thrown), { cause: thrown });
}

/** The one JSON error shape every route answers with. */
export interface ErrorBody {
  /** `requestId`: the request's id (X-Request-Id), set by the Express error handler. */
  error: { code: string; message: string; details?: unknown; requestId?: string };
}

export function toErrorBody(err: TagwardenError): ErrorBody {
  const body: ErrorBody = { error: { code: err.code, message: err.message } };
  if (err.details !== undefined) body.error.details = err.details;
  return body;
}
