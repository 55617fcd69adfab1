import { afterAll, beforeAll } from 'vitest';
import { createApiKey } from '../src/api/keys.ts';
import type { AppDeps } from '../src/app.ts';
import type { Db } from '../src/store/db.ts';
import type { EngineUnderTest } from './engines.ts';
import { startTagwarden, startVendor, testConfig } from './helpers.ts';

/**
 * The setup most consent-API integration tests share: inside a `forEachEngine` callback, a fresh
 * database of that engine, a Tagwarden on it (API rate limit raised so a test's many calls are not
 * throttled), one API key per scope, and a `call` for the API; all closed after the suite.
 */

export type KeyScope = 'consent:write' | 'consent:read' | 'audit:read' | 'admin';

/** The label each scope's key gets (as the tests wrote them by hand). */
const LABELS: Record<KeyScope, string> = { 'consent:write': 'writer', 'consent:read': 'reader', 'audit:read': 'auditor', admin: 'admin' };

export interface ConsentApiOptions {
  /** App dependencies besides the database (clocks, `webhooks: false`). */
  deps?: Pick<AppDeps, 'webhooks' | 'deliveryClock' | 'consentClock'>;
  /** The scopes to create a key for, one key each; default writer, reader and auditor. */
  keys?: KeyScope[];
  /** Start a fake vendor (helpers.ts startVendor) first; the config function gets its URL. */
  vendor?: boolean;
  /** Opens the database instead of `engine.open()` (a SQLite file another connection can open too). */
  open?: () => Promise<Db>;
  /** Runs after everything is closed (removing what `open` created). */
  afterClose?: () => void | Promise<void>;
}

export interface ApiAnswer {
  status: number;
  /** The parsed JSON body; the text when it is not JSON; undefined when empty. */
  body: any;
  /** Not enumerable (see call). */
  headers: Headers;
}

export interface ConsentApiHarness {
  readonly db: Db;
  readonly tw: Awaited<ReturnType<typeof startTagwarden>>;
  /** The fake vendor (only with `vendor: true`). */
  readonly vendor: Awaited<ReturnType<typeof startVendor>>;
  /** The keys by role: consent:write, consent:read, audit:read, admin. */
  readonly writer: string;
  readonly reader: string;
  readonly auditor: string;
  readonly admin: string;
  /**
   * One request to the app: `key` as x-api-key (none when undefined), a body other than a string
   * or bytes sent as JSON, with `type` as its content-type; `headers` added last.
   */
  readonly call: (method: string, path: string, key: string | undefined, body?: unknown, type?: string, headers?: Record<string, string>) => Promise<ApiAnswer>;
}

/**
 * `config` is the raw config (or a function of the vendor's URL); its `api` object is merged over
 * the raised rate limit, so a suite giving its own `api.rateLimit` replaces it.
 */
export function consentApiHarness(engine: EngineUnderTest, config: Record<string, unknown> | ((vendorUrl: string) => Record<string, unknown>), options: ConsentApiOptions = {}): ConsentApiHarness {
  let db: Db | undefined;
  let tw: Awaited<ReturnType<typeof startTagwarden>> | undefined;
  let vendor: Awaited<ReturnType<typeof startVendor>> | undefined;
  const keys = new Map<KeyScope, string>();

  beforeAll(async () => {
    db = options.open === undefined ? await engine.open() : await options.open();
    if (options.vendor === true) vendor = await startVendor();
    const raw = typeof config === 'function' ? config(vendor?.url ?? '') : config;
    const api = (raw.api ?? {}) as Record<string, unknown>;
    tw = await startTagwarden(testConfig({ ...raw, api: { rateLimit: { perSecond: 1000, burst: 1000 }, ...api } }), undefined, { db, ...options.deps });
    for (const scope of options.keys ?? ['consent:write', 'consent:read', 'audit:read']) {
      keys.set(scope, (await createApiKey(db, { label: LABELS[scope], scopes: [scope] })).key);
    }
  });

  afterAll(async () => {
    await tw?.close();
    await vendor?.close();
    await db?.close();
    await options.afterClose?.();
  });

  const ready = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`consentApiHarness: no ${what} (read it inside a test, after beforeAll)`);
    return value;
  };
  const key = (scope: KeyScope): string => ready(keys.get(scope), `${scope} key`);

  async function call(method: string, path: string, apiKey: string | undefined, body?: unknown, type = 'application/json', headers: Record<string, string> = {}): Promise<ApiAnswer> {
    const sent: Record<string, string> = {};
    if (apiKey !== undefined) sent['x-api-key'] = apiKey;
    if (body !== undefined) sent['content-type'] = type;
    const payload = body === undefined ? undefined : typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body);
    const res = await fetch(`${ready(tw, 'app').url}${path}`, { method, headers: { ...sent, ...headers }, ...(payload === undefined ? {} : { body: payload }) });
    const text = await res.text();
    let json: any;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      json = text;
    }
    // headers not enumerable: an answer still deep-equals a plain `{ status, body }`.
    return Object.defineProperty({ status: res.status, body: json }, 'headers', { value: res.headers, enumerable: false }) as ApiAnswer;
  }

  return {
    get db() {
      return ready(db, 'database');
    },
    get tw() {
      return ready(tw, 'app');
    },
    get vendor() {
      return ready(vendor, 'vendor (pass vendor: true)');
    },
    get writer() {
      return key('consent:write');
    },
    get reader() {
      return key('consent:read');
    },
    get auditor() {
      return key('audit:read');
    },
    get admin() {
      return key('admin');
    },
    call,
  };
}
