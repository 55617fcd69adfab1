import { Router, type Request, type Response } from 'express';
import { MalformedBodyError, UnauthorizedError, UnsupportedMediaTypeError, type TagwardenError } from '../../errors.ts';
import { readLimitedText } from '../../http/body.ts';
import { adminKeyMatcher } from '../admin-auth.ts';
import { requestFailureKey } from '../auth.ts';
import { checkFailureThrottle, type FailureThrottle } from '../rate-limit.ts';
import { sessionCookie, type UiSessions } from './session.ts';
import { crossOriginProblem, sessionToken, type SessionAuth } from './session-check.ts';

export interface LoginRouteOptions {
  adminKey: string;
  sessions: UiSessions;
  session: SessionAuth;
  /** The admin key's failure throttle (config `api.authFailures`), shared with /debug. */
  failures: FailureThrottle;
  trustProxyHops: number;
  /** Config `ui.secureCookie`: Secure even when the login did not come over https. */
  secureCookie: boolean;
}

/** A login body holds one key of at most a few hundred bytes. */
const MAX_LOGIN_BYTES = 4096;

/**
 * POST /ui/login (the admin key, as a form or JSON) → the session cookie; POST /ui/logout; GET
 * /ui/api/session → the session's CSRF token and expiry (docs/ui.md). A form login is answered
 * with redirects to the page (`?login=failed`, `?login=throttled`), a JSON one with 401 / 429.
 */
export function uiLoginRouter(o: LoginRouteOptions): Router {
  const router = Router();
  const matches = adminKeyMatcher(o.adminKey);
  const secure = (req: Request): boolean => o.secureCookie || req.secure;

  router.post('/ui/login', (req, res, next) => {
    // A login from another site's page would sign the visitor in as the attacker (login CSRF).
    const crossOrigin = crossOriginProblem(req);
    if (crossOrigin !== undefined) {
      next(crossOrigin);
      return;
    }
    const form = isForm(req);
    const failureKey = requestFailureKey(req, o.trustProxyHops);
    const refuse = (err: TagwardenError, page: string): void => {
      if (form) res.redirect(303, `/ui?login=${page}`);
      else next(err);
    };
    // Before the key is compared, the right one included: guessing is slowed to the throttle's rate.
    const throttled = checkFailureThrottle(o.failures, failureKey);
    if (throttled !== undefined) {
      if (throttled.retryAfterS !== undefined) res.setHeader('retry-after', String(throttled.retryAfterS));
      refuse(throttled, 'throttled');
      return;
    }
    readLoginKey(req, (outcome) => {
      if ('error' in outcome) {
        next(outcome.error);
        return;
      }
      if (!matches(outcome.key)) {
        if (outcome.key !== undefined && outcome.key !== '') o.failures.fail(failureKey);
        refuse(new UnauthorizedError('wrong admin key'), 'failed');
        return;
      }
      const s = o.sessions.issue();
      res.setHeader('set-cookie', sessionCookie(s.token, o.sessions.ttlSeconds, secure(req)));
      res.redirect(303, '/ui');
    });
  });

  router.post('/ui/logout', (req, res, next) => {
    const found = o.session(req);
    if (found === undefined) {
      next(new UnauthorizedError('no dashboard session'));
      return;
    }
    if ('error' in found) {
      next(found.error);
      return;
    }
    o.sessions.revoke(found.session);
    clearCookie(res, secure(req));
    res.status(204).end();
  });

  router.get('/ui/api/session', (req, res) => {
    // The one dashboard route without the CSRF token: it is where the page gets it. Another site
    // cannot read the answer (no CORS here) and SameSite=Strict keeps the cookie off its requests.
    const s = o.sessions.verify(sessionToken(req));
    if (s === undefined) throw new UnauthorizedError('no dashboard session');
    res.json({ csrf: s.csrf, expiresAt: s.expiresAt });
  });

  return router;
}

function clearCookie(res: Response, secure: boolean): void {
  res.setHeader('set-cookie', sessionCookie('', 0, secure));
}

function isForm(req: Request): boolean {
  return mediaType(req) === 'application/x-www-form-urlencoded';
}

function mediaType(req: Request): string {
  return (req.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
}

/** The `key` of a form or JSON login body, bounded; a JSON body that is not an object has none. */
function readLoginKey(req: Request, done: (outcome: { key: string | undefined } | { error: TagwardenError }) => void): void {
  const type = mediaType(req);
  if (type !== 'application/x-www-form-urlencoded' && type !== 'application/json') {
    done({ error: new UnsupportedMediaTypeError('send the key as a form (application/x-www-form-urlencoded) or as JSON') });
    return;
  }
  readLimitedText(req, MAX_LOGIN_BYTES, (outcome) => {
    if ('error' in outcome) {
      done(outcome);
      return;
    }
    if (type === 'application/x-www-form-urlencoded') {
      done({ key: new URLSearchParams(outcome.text).get('key') ?? undefined });
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(outcome.text);
    } catch {
      done({ error: new MalformedBodyError('the body is not valid JSON') });
      return;
    }
    const key = body !== null && typeof body === 'object' && 'key' in body ? body.key : undefined;
    done({ key: typeof key === 'string' ? key : undefined });
  });
}
