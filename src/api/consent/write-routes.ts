import { Router, type Request, type RequestHandler } from 'express';
import { ImportIncompleteError, PayloadTooLargeError, UnsupportedMediaTypeError, ValidationError, toErrorBody } from '../../errors.ts';
import { parseOr400 } from './validate.ts';
import { jsonBody } from '../../http/body.ts';
import type { ConsentInput, InputOutcome, RecordPatch, SubjectRef } from '../../store/types.ts';
import { clientIdFor, type ClientIdKey } from '../../store/client-id.ts';
import { csvEncoding, readCsv, type CsvEncoding } from './csv.ts';
import { consentEventInput, csvHeader, MAX_ID, payloadHash, pushInputs, pushSchema, type CSV_COLUMNS } from './inputs.ts';
import { idProblem } from './ids.ts';
import { systemClock, type Clock } from '../../lib/clock.ts';

/** What the write routes need of the store. */
export interface ConsentWriter {
  apply(inputs: ConsentInput[], patches?: RecordPatch[]): Promise<InputOutcome[]>;
}

export interface WriteRouteOptions {
  siteId: string;
  store: ConsentWriter;
  /** Middleware admitting a request with the scope (and setting res.locals.apiKeyId). */
  guard: (scope: 'consent:write') => RequestHandler;
  maxBodyBytes: number;
  maxCsvBytes: number;
  maxBatchEvents: number;
  /** Rows per transaction of a CSV import. */
  importChunkRows?: number;
  /**
   * The server's `requestTimeoutMs`: a CSV import reads its upload only as fast as the store takes
   * the rows, so a long one would be cut by Node's request timeout (a bare 408, the client never
   * told what was stored). The import stops itself before that and answers what it stored.
   * Absent: no limit of its own.
   */
  requestTimeoutMs?: number;
  /** The time source; default the system clock. */
  clock?: Clock;
  /**
   * Remembers the subject a push's derived ClientId names (SecurePrivacy's routes look subjects up
   * by ClientId, src/store/universal-consent.ts); called before the write, as those routes do.
   */
  rememberClientId?: (clientId: string, subject: SubjectRef) => Promise<void>;
  /** The store's ClientId key (src/store/client-id.ts): a push with customUserId answers its ClientId. */
  clientIdKey: () => Promise<ClientIdKey>;
  /** How far ahead of the clock a consent time may be (`site.consentClockSkewMs`). */
  consentClockSkewMs: number;
}

function apiKeyId(res: { locals: Record<string, unknown> }): string | undefined {
  const id = res.locals.apiKeyId;
  return typeof id === 'string' ? id : undefined;
}

function subjectOf(type: 'visitor' | 'user', v: unknown): SubjectRef | undefined {
  if (typeof v === 'number' && Number.isSafeInteger(v)) v = String(v);
  return typeof v === 'string' && v.length > 0 && v.length <= MAX_ID ? { type, id: v } : undefined;
}

/**
 * The user id of `customer_ids.email`: trimmed and lowercased. An address names one person however
 * it is capitalised, and a consent store that told "Ann@Example.com" from "ann@example.com" would let a
 * revocation under one spelling miss the grant under the other. The address as sent stays in the
 * audit attributes (`customer_ids`).
 */
function emailSubject(v: unknown): SubjectRef | undefined {
  return typeof v === 'string' ? subjectOf('user', v.trim().toLowerCase()) : undefined;
}

/**
 * A Bloomreach event's customer and the other ids it names. `customer_ids.registered` (the seed's
 * example id) first; else `customer_ids.email` (a person, so a user id); else `customer_ids.cookie`
 * (a browser, so a visitor); else the flat shape's `customer_id`, `user_id`, `visitor_id`. Given
 * both a registered id and an email, the email's user is linked to the registered one: the event
 * says they are the same customer, and consent given under either then applies to both.
 */
function eventSubject(raw: Record<string, unknown>): { subject: SubjectRef; links: SubjectRef[] } | undefined {
  const ids = raw.customer_ids;
  if (ids !== null && typeof ids === 'object' && !Array.isArray(ids)) {
    const given = ids as Record<string, unknown>;
    const registered = subjectOf('user', given.registered);
    const email = emailSubject(given.email);
    if (registered !== undefined) return { subject: registered, links: email === undefined || email.id === registered.id ? [] : [email] };
    if (email !== undefined) return { subject: email, links: [] };
    const cookie = subjectOf('visitor', given.cookie);
    if (cookie !== undefined) return { subject: cookie, links: [] };
  }
  const flat = subjectOf('user', raw.customer_id) ?? subjectOf('user', raw.user_id) ?? subjectOf('visitor', raw.visitor_id);
  return flat === undefined ? undefined : { subject: flat, links: [] };
}

/** The keys of a flat event that say who it is about or what it is, not what was consented. */
const FLAT_ID_KEYS: ReadonlySet<string> = new Set(['customer_ids', 'customer_id', 'user_id', 'visitor_id', 'event_type']);

/**
 * The attributes of an event: Bloomreach's tracking API nests them in `properties`, with the
 * timestamp beside them (other top-level keys are not attributes); the flat shape has them at the
 * top level beside the ids. Whatever is not a seed attribute is a custom one (event-attributes.ts).
 */
function eventAttributes(raw: Record<string, unknown>): Record<string, unknown> {
  const props = raw.properties;
  if (props === null || typeof props !== 'object' || Array.isArray(props)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(raw)) if (!FLAT_ID_KEYS.has(k)) out[k] = v;
    return out;
  }
  return { timestamp: raw.timestamp, ...(props as Record<string, unknown>) };
}

/**
 * Seed bloomreach-tracking-consent.txt: "The event name must be consent". An event naming another
 * type (double_opt_in, a page view…) is not consent and is refused, never stored as consent. An
 * event without `event_type` is Tagwarden's flat shape and is taken as consent: the route says what
 * it records.
 */
function eventTypeProblem(raw: Record<string, unknown>): string | undefined {
  if (!Object.hasOwn(raw, 'event_type') || raw.event_type === undefined || raw.event_type === 'consent') return undefined;
  return 'event_type: must be consent (this route records consent events only)';
}

/** Which of an event's id fields `eventSubject` took `id` from, to name it in a refusal. */
function eventIdField(raw: Record<string, unknown>, id: string): string {
  const ids = raw.customer_ids !== null && typeof raw.customer_ids === 'object' && !Array.isArray(raw.customer_ids) ? (raw.customer_ids as Record<string, unknown>) : {};
  const fields: [string, unknown][] = [['customer_ids.registered', ids.registered], ['customer_ids.email', typeof ids.email === 'string' ? ids.email.trim().toLowerCase() : undefined], ['customer_ids.cookie', ids.cookie], ['customer_id', raw.customer_id], ['user_id', raw.user_id], ['visitor_id', raw.visitor_id]];
  return fields.find(([, v]) => v === id || (typeof v === 'number' && String(v) === id))?.[0] ?? 'customer_ids';
}

/** A problem as `field: message` read back into a `details.issues` entry. */
function issueOf(problem: string): { path: string; message: string } {
  const m = /^([A-Za-z_][\w.]*): (.*)$/s.exec(problem);
  return m === null ? { path: '', message: problem } : { path: m[1]!, message: m[2]! };
}

function describeOutcome(o: InputOutcome): Record<string, unknown> {
  const out: Record<string, unknown> = { valid: o.valid, applied: o.applied, duplicate: o.duplicate };
  if (o.invalidReason !== undefined) {
    out.invalidReason = o.invalidReason;
    out.revoked = true;
  }
  return out;
}

export function consentWriteRouter(o: WriteRouteOptions): Router {
  const router = Router();
  const clock = o.clock ?? systemClock;
  const now = (): number => clock.now();
  const chunkRows = o.importChunkRows ?? 5000;
  const skewMs = o.consentClockSkewMs;

  // Push consent for a visitor and/or a user (Tagwarden's shape, SecurePrivacy's, Seeka's identity payload).
  router.post('/api/v1/consent', o.guard('consent:write'), jsonBody(o.maxBodyBytes), async (req, res) => {
    const body = parseOr400(pushSchema, req.body);
    const subjects: SubjectRef[] = [];
    if (body.visitorId !== undefined) subjects.push({ type: 'visitor', id: body.visitorId });
    if (body.userId !== undefined) subjects.push({ type: 'user', id: body.userId });
    if (body.customUserId !== undefined) subjects.push({ type: 'user', id: body.customUserId });
    const [subject, ...links] = subjects;
    if (subject === undefined) throw new ValidationError('visitorId, userId or customUserId: one is required', { details: { issues: [{ path: 'visitorId', message: 'required' }] } });
    const key = apiKeyId(res);
    const { inputs, patch, problems } = pushInputs(body, req.body, { siteId: o.siteId, subject, links, source: 'push', now: now(), skewMs, ...(key === undefined ? {} : { apiKeyId: key }) });
    if (problems.length > 0) throw new ValidationError(problems.map((p) => (p.path === '' ? p.message : `${p.path}: ${p.message}`)).join('; '), { details: { issues: problems } });
    const clientId = body.customUserId === undefined ? undefined : clientIdFor(await o.clientIdKey(), o.siteId, body.customUserId);
    if (clientId !== undefined) await o.rememberClientId?.(clientId, { type: 'user', id: body.customUserId! });
    const outcomes = await o.store.apply(inputs, patch === undefined ? [] : [patch]);
    const answer: Record<string, unknown> = { subject, created: new Date(now()).toISOString(), items: outcomes.map((out, i) => ({ item: inputs[i]?.item, ...describeOutcome(out) })) };
    if (clientId !== undefined) answer.clientId = clientId;
    res.status(200).json(answer);
  });

  // Consent events in Bloomreach's shape: one event, an array, or {events: [...]}.
  router.post('/api/v1/consent/events', o.guard('consent:write'), jsonBody(o.maxBodyBytes), async (req, res) => {
    const body = req.body as unknown;
    const batch = Array.isArray(body) || (body !== null && typeof body === 'object' && Array.isArray((body as { events?: unknown }).events));
    const list: unknown[] = Array.isArray(body) ? body : batch ? (body as { events: unknown[] }).events : [body];
    // One event of another type is a 400; in a batch it is that event's problem only.
    if (!batch && body !== null && typeof body === 'object') {
      const refused = eventTypeProblem(body as Record<string, unknown>);
      if (refused !== undefined) throw new ValidationError(refused, { details: { issues: [{ path: 'event_type', message: 'must be consent' }] } });
    }
    if (list.length > o.maxBatchEvents) throw new ValidationError(`events: at most ${o.maxBatchEvents} per request`, { details: { issues: [{ path: 'events', message: 'too many' }] } });
    const key = apiKeyId(res);
    const results: Record<string, unknown>[] = [];
    const inputs: ConsentInput[] = [];
    const slots: number[] = [];
    list.forEach((item, index) => {
      if (item === null || typeof item !== 'object' || Array.isArray(item)) {
        results.push({ index, stored: false, problems: ['an event must be a JSON object'] });
        return;
      }
      const raw = item as Record<string, unknown>;
      const refused = eventTypeProblem(raw);
      if (refused !== undefined) {
        results.push({ index, stored: false, problems: [refused] });
        return;
      }
      const who = eventSubject(raw);
      if (who === undefined) {
        results.push({ index, stored: false, problems: ['customer_ids.registered, customer_ids.email, customer_ids.cookie, customer_id, user_id or visitor_id: required'] });
        return;
      }
      // The one id rule (./ids.ts), for the subject and the ids it links: reported, never stored.
      for (const ref of [who.subject, ...who.links]) {
        const badId = idProblem(ref.id);
        if (badId !== undefined) {
          results.push({ index, stored: false, problems: [`${eventIdField(raw, ref.id)}: ${badId}`] });
          return;
        }
      }
      const { input, problems } = consentEventInput(eventAttributes(raw), {
        siteId: o.siteId,
        subject: who.subject,
        // Seed: private_api is "Tracked via API using basic authentication", what an API key is.
        source: 'private_api',
        now: now(),
        skewMs,
        ...(raw.customer_ids === undefined ? {} : { customerIds: raw.customer_ids }),
        ...(key === undefined ? {} : { apiKeyId: key }),
      });
      if (input === undefined) {
        results.push({ index, stored: false, problems });
        return;
      }
      if (who.links.length > 0) input.links = who.links;
      // The hash covers the whole event as sent (ids and event_type too), not only its attributes.
      input.payloadHash = payloadHash(raw);
      slots.push(results.length);
      results.push({ index, stored: true, ...(problems.length > 0 ? { problems } : {}) });
      inputs.push(input);
    });
    // A single event (not a list) that cannot be stored is the request's failure: a 400 naming the field.
    const first = results[0];
    if (!batch && first !== undefined && first.stored === false) {
      const problems = first.problems as string[];
      throw new ValidationError(problems.join('; '), { details: { issues: problems.map(issueOf) } });
    }
    const outcomes = inputs.length === 0 ? [] : await o.store.apply(inputs);
    outcomes.forEach((out, i) => {
      const slot = slots[i];
      if (slot !== undefined) results[slot] = { ...results[slot], ...describeOutcome(out) };
    });
    res.status(200).json({ events: results });
  });

  // CSV import, streamed: one transaction per chunk of rows, a report per row.
  router.post('/api/v1/consent/import', o.guard('consent:write'), async (req, res) => {
    const deadline = o.requestTimeoutMs === undefined ? Number.POSITIVE_INFINITY : now() + o.requestTimeoutMs - importReserveMs(o.requestTimeoutMs);
    const [ctype, ...params] = (req.headers['content-type'] ?? '').split(';');
    const media = ctype!.trim().toLowerCase();
    if (media !== 'text/csv' && media !== 'text/plain' && media !== 'application/octet-stream') {
      throw new UnsupportedMediaTypeError('send the file as text/csv');
    }
    // UTF-8 unless the Content-Type declares another charset we read (./csv.ts csvEncoding).
    const charset = params.map((p) => p.trim()).find((p) => p.toLowerCase().startsWith('charset='))?.slice('charset='.length).replace(/^"(.*)"$/, '$1');
    const encoding = charset === undefined ? 'utf-8' : csvEncoding(charset);
    if (encoding === undefined) throw new UnsupportedMediaTypeError(`charset ${charset!.slice(0, 40)} is not read: send utf-8, iso-8859-1 or windows-1252`);
    const declared = Number(req.headers['content-length'] ?? Number.NaN);
    if (declared > o.maxCsvBytes) {
      res.setHeader('connection', 'close');
      throw new PayloadTooLargeError(`the file is larger than ${o.maxCsvBytes} bytes`, { details: { limit: o.maxCsvBytes } });
    }
    const report = await importCsv(req, o, apiKeyId(res), now, chunkRows, skewMs, encoding, deadline);
    if (report.resumeFromRow !== undefined) {
      const from = report.resumeFromRow;
      const e = new ImportIncompleteError(
        `the import stopped at row ${from} to answer within server.requestTimeoutMs (${o.requestTimeoutMs} ms): the rows before it were imported, the rest of the file was not read; send the rows from row ${from} on again (or the whole file: stored rows are duplicates and change nothing), or raise server.requestTimeoutMs`,
        { details: { requestTimeoutMs: o.requestTimeoutMs, ...report } },
      );
      // The rest of the upload is read and dropped (so the client sees this answer, not a reset)
      // and the connection is not reused.
      req.resume();
      res.setHeader('connection', 'close');
      res.status(e.status).json(toErrorBody(e));
      return;
    }
    if (report.encodingError !== undefined) {
      // Streamed, the file cannot be refused whole: what came before the bad bytes is imported
      // (and a corrected file re-imported is a no-op for those rows, by their dedup keys).
      const { row, error } = report.encodingError;
      // The rest of the body is not read: the connection is not reused.
      res.setHeader('connection', 'close');
      res.status(400).json({ error: { code: 'TW_ERR_VALIDATION', message: `row ${row}: ${error}; the rows before it were imported`, details: { issues: [{ path: 'body', message: error }], ...report } } });
      return;
    }
    // Over the limit, the rest of the upload is read and dropped (bounded by the request timeout),
    // and the connection is not reused.
    if (report.tooLarge === true) res.setHeader('connection', 'close');
    res.status(report.tooLarge ? 413 : 200).json(report.tooLarge ? { error: { code: 'TW_ERR_PAYLOAD_TOO_LARGE', message: `the file is larger than ${o.maxCsvBytes} bytes; the rows before the limit were imported`, details: report } } : report);
  });

  return router;
}

export interface ImportReport {
  rows: number;
  stored: number;
  applied: number;
  duplicates: number;
  invalid: number;
  /** Rows with a problem (stored invalid, or not stored), at most MAX_REPORTED. */
  errors: { row: number; error: string; stored: boolean }[];
  errorsTruncated: boolean;
  tooLarge?: boolean;
  /** The file stopped being text in its encoding at this row: nothing from there on was read. */
  encodingError?: { row: number; error: string };
  /**
   * The import stopped before the request timeout at this row (1-based, the header is row 1): the
   * rows before it are stored and counted here, nothing from it on was read.
   */
  resumeFromRow?: number;
}

/**
 * How long before the request timeout an import stops reading: a tenth of it, at least 250 ms and
 * at most 3 s (the time from the request's first byte to the route, and the answer). The last
 * chunk's commit is added to it (see importCsv): Node cuts at the timeout, checking every second
 * or so (src/http/server.ts), never before it.
 */
export function importReserveMs(requestTimeoutMs: number): number {
  return Math.min(3000, Math.max(250, Math.floor(requestTimeoutMs / 10)));
}

const MAX_REPORTED = 1000;

async function* limited(req: Request, max: number, onExceed: () => void): AsyncGenerator<Buffer> {
  let total = 0;
  // Not destroyed when the import stops early (a 413, an encoding error, the time limit): a
  // destroyed request takes its socket, and the answer, with it.
  for await (const chunk of req.iterator({ destroyOnReturn: false })) {
    const buf = chunk as Buffer;
    total += buf.length;
    if (total > max) {
      onExceed();
      req.resume();
      return;
    }
    yield buf;
  }
}

async function importCsv(req: Request, o: WriteRouteOptions, key: string | undefined, now: () => number, chunkRows: number, skewMs: number, encoding: CsvEncoding, deadline: number): Promise<ImportReport> {
  const report: ImportReport = { rows: 0, stored: 0, applied: 0, duplicates: 0, invalid: 0, errors: [], errorsTruncated: false };
  const problem = (row: number, error: string, stored: boolean): void => {
    if (report.errors.length < MAX_REPORTED) report.errors.push({ row, error, stored });
    else report.errorsTruncated = true;
  };
  const count = (out: InputOutcome): void => {
    if (out.duplicate) report.duplicates++;
    else {
      report.stored++;
      if (out.applied) report.applied++;
    }
  };
  let columns: Record<(typeof CSV_COLUMNS)[number], number> | undefined;
  let batch: { row: number; input: ConsentInput }[] = [];
  /** The longest commit of a chunk so far: the next one may take as long. */
  let longestFlushMs = 0;
  const flush = async (): Promise<void> => {
    const started = now();
    try {
      await flushBatch();
    } finally {
      longestFlushMs = Math.max(longestFlushMs, now() - started);
    }
  };
  const flushBatch = async (): Promise<void> => {
    if (batch.length === 0) return;
    const chunk = batch;
    batch = [];
    let outcomes: InputOutcome[];
    try {
      outcomes = await o.store.apply(chunk.map((b) => b.input));
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      // Every row was checked before it joined the chunk, so this is a row the store refuses that
      // the checks let through: one such row must not cost the chunk's good ones. Each row alone,
      // the refused ones reported as not stored.
      for (const b of chunk) {
        try {
          count((await o.store.apply([b.input]))[0]!);
        } catch (rowErr) {
          if (!(rowErr instanceof ValidationError)) throw rowErr;
          if (!b.input.valid) report.invalid--;
          const reported = report.errors.find((e) => e.row === b.row);
          if (reported !== undefined) Object.assign(reported, { error: rowErr.message, stored: false });
          else problem(b.row, rowErr.message, false);
        }
      }
      return;
    }
    outcomes.forEach(count);
  };
  let extras: { name: string; at: number }[] = [];
  for await (const record of readCsv(limited(req, o.maxCsvBytes, () => (report.tooLarge = true)), { encoding })) {
    if (columns === undefined) {
      if ('error' in record) throw new ValidationError(`header: ${record.error}`, { details: { issues: [{ path: 'header', message: record.error }] } });
      const header = csvHeader(record.fields);
      if (typeof header === 'string') throw new ValidationError(`header: ${header}`, { details: { issues: [{ path: 'header', message: header }] } });
      columns = header;
      // Other columns (message, email, source, custom ones) are the row's further attributes, kept
      // as evidence like an event's (seed bloomreach-tracking-consent.txt: "You can also track any
      // additional custom attributes you need"); consentEventInput bounds and checks them.
      const known = new Set(Object.values(header));
      extras = record.fields.flatMap((name, at) => (known.has(at) || name.trim() === '' ? [] : [{ name: name.trim(), at }]));
      continue;
    }
    if ('error' in record && record.fatal === true) {
      report.encodingError = { row: record.row, error: record.error };
      break;
    }
    // Stop while the rows read so far can still be committed and answered before the request
    // timeout: the client learns where to go on from, instead of a bare 408 from Node.
    if (now() + 1.5 * longestFlushMs >= deadline) {
      report.resumeFromRow = record.row;
      break;
    }
    report.rows++;
    if ('error' in record) {
      problem(record.row, record.error, false);
      continue;
    }
    const c = columns;
    const cell = (name: (typeof CSV_COLUMNS)[number]): string => record.fields[c[name]] ?? '';
    // Each row is checked whole before it joins a chunk (id here, time and the rest in
    // consentEventInput): a refused row is reported and never reaches the store.
    const customer = cell('customer_id').trim();
    const badId = idProblem(customer);
    if (badId !== undefined) {
      problem(record.row, `customer_id: ${badId}`, false);
      continue;
    }
    const raw: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
    for (const { name, at } of extras) {
      const v = record.fields[at] ?? '';
      if (v !== '') raw[name] = v;
    }
    Object.assign(raw, { action: cell('action').trim(), category: cell('category').trim(), timestamp: cell('timestamp').trim(), valid_until: cell('valid_until').trim() });
    const { input, problems } = consentEventInput(raw, { siteId: o.siteId, subject: { type: 'user', id: customer }, source: 'import', now: now(), skewMs, ...(key === undefined ? {} : { apiKeyId: key }) });
    if (input === undefined) {
      problem(record.row, problems.join('; '), false);
      continue;
    }
    if (!input.valid) {
      report.invalid++;
      problem(record.row, `${problems.join('; ')} (stored as invalid: revokes ${input.item})`, true);
    }
    batch.push({ row: record.row, input });
    if (batch.length >= chunkRows) await flush();
  }
  await flush();
  if (columns === undefined) throw new ValidationError('the file is empty: expected the header action,category,valid_until,timestamp,customer_id');
  return report;
}
