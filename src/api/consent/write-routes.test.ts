import express from 'express';
import { pino } from 'pino';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../errors.ts';
import { errorHandler } from '../../http/errors.ts';
import { FakeClock } from '../../lib/fake-clock.ts';
import type { ConsentInput, InputOutcome } from '../../store/types.ts';
import { consentWriteRouter, type ConsentWriter } from './write-routes.ts';

const NOW = Date.UTC(2026, 11, 2, 12);
const HEADER = 'action,category,valid_until,timestamp,customer_id';

/** A store that refuses (ValidationError) any call holding an input for `refused`, like an engine would. */
function fakeStore(refused: string): ConsentWriter & { calls: number; stored: string[] } {
  const store = {
    calls: 0,
    stored: [] as string[],
    apply(inputs: ConsentInput[]): Promise<InputOutcome[]> {
      store.calls++;
      if (inputs.some((i) => i.subject.id === refused)) return Promise.reject(new ValidationError('inputs.0.subject.id: refused by the store'));
      store.stored.push(...inputs.map((i) => i.subject.id));
      return Promise.resolve(inputs.map((i) => ({ auditSeq: 1, valid: i.valid, applied: true, duplicate: false })));
    },
  };
  return store;
}

function app(store: ConsentWriter, importChunkRows = 100) {
  const a = express();
  a.use(
    consentWriteRouter({
      siteId: 'shop',
      store,
      guard: () => (_req, _res, next) => next(),
      maxBodyBytes: 65_536,
      maxCsvBytes: 1_000_000,
      maxBatchEvents: 100,
      importChunkRows,
      clock: new FakeClock(NOW),
      consentClockSkewMs: 300_000,
      clientIdKey: () => Promise.resolve({ secret: Buffer.alloc(32) }),
    }),
  );
  a.use(errorHandler(pino({ level: 'silent' })));
  return a;
}

describe('CSV import: a chunk the store refuses', () => {
  it('is applied row by row: the good rows are stored, the refused one reported', async () => {
    const store = fakeStore('c2');
    const rows = ['c1', 'c2', 'c3', 'c4'].map((c) => `accept,analytics,unlimited,1700000000,${c}`);
    const r = await request(app(store, 3)).post('/api/v1/consent/import').set('content-type', 'text/csv').send(`${HEADER}\n${rows.join('\n')}\n`);
    expect(r.status).toBe(200);
    expect(store.stored.sort()).toEqual(['c1', 'c3', 'c4']);
    expect(r.body).toMatchObject({ rows: 4, stored: 3, applied: 3, invalid: 0, errors: [{ row: 3, error: 'inputs.0.subject.id: refused by the store', stored: false }] });
  });

  it('a refused row that was reported as stored-invalid is corrected to not stored', async () => {
    const store = fakeStore('c2');
    const r = await request(app(store)).post('/api/v1/consent/import').set('content-type', 'text/csv').send(`${HEADER}\naccept,analytics,unlimited,1700000000,c1\nmaybe,analytics,unlimited,1700000000,c2\n`);
    expect(r.body).toMatchObject({ rows: 2, stored: 1, invalid: 0, errors: [{ row: 3, stored: false }] });
  });

  it('anything else the store throws still fails the request (a 500, nothing reported as stored)', async () => {
    const store: ConsentWriter = { apply: () => Promise.reject(new TypeError('connection lost')) };
    const r = await request(app(store)).post('/api/v1/consent/import').set('content-type', 'text/csv').send(`${HEADER}\naccept,analytics,unlimited,1700000000,c1\n`);
    expect(r.status).toBe(500);
  });
});
