import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readCsv, type CsvError, type CsvRecord } from './csv.ts';

async function all(text: string | string[], options = {}): Promise<(CsvRecord | CsvError)[]> {
  const chunks = Array.isArray(text) ? text : [text];
  const out: (CsvRecord | CsvError)[] = [];
  for await (const r of readCsv(chunks.map((c) => Buffer.from(c)), options)) out.push(r);
  return out;
}

describe('readCsv', () => {
  it('reads the Bloomreach example file as is', async () => {
    const file = 'action,category,valid_until,timestamp,customer_id\nreject,weekly_newsletter,unlimited,1522158555,[email protected]\naccept,weekly_newsletter,unlimited,1522156555,[email protected]\naccept,push_notification,1522112345,1522152855,[email protected]\n';
    expect(await all(file)).toEqual([
      { row: 1, fields: ['action', 'category', 'valid_until', 'timestamp', 'customer_id'] },
      { row: 2, fields: ['reject', 'weekly_newsletter', 'unlimited', '1522158555', '[email protected]'] },
      { row: 3, fields: ['accept', 'weekly_newsletter', 'unlimited', '1522156555', '[email protected]'] },
      { row: 4, fields: ['accept', 'push_notification', '1522112345', '1522152855', '[email protected]'] },
    ]);
  });

  it('handles quotes, CRLF, a BOM, blank lines and a missing final newline', async () => {
    expect(await all('\ufeffa,b\r\n"x, y","say ""hi"""\r\n\r\n"multi\nline",z')).toEqual([
      { row: 1, fields: ['a', 'b'] },
      { row: 2, fields: ['x, y', 'say "hi"'] },
      { row: 4, fields: ['multi\nline', 'z'] },
    ]);
  });

  it('gives the same records however the file is cut into chunks', async () => {
    const file = 'h1,h2\n"a,""b""",c\r\nd,"e\nf"\n';
    const whole = await all(file);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: file.length - 1 }), { maxLength: 6 }), async (cuts) => {
        const points = [...new Set(cuts)].sort((a, b) => a - b);
        const parts: string[] = [];
        let last = 0;
        for (const p of points) {
          parts.push(file.slice(last, p));
          last = p;
        }
        parts.push(file.slice(last));
        expect(await all(parts)).toEqual(whole);
      }),
      { seed: 20261123 },
    );
  });

  it('reports an over-long record or too many fields for its row and goes on', async () => {
    const out = await all(`a,b\n${'x'.repeat(50)},y\n1,2,3,4\nok,row\n`, { maxRecordChars: 20, maxFields: 3 });
    expect(out).toEqual([
      { row: 1, fields: ['a', 'b'] },
      { row: 2, error: 'record longer than 20 characters' },
      { row: 3, error: 'more than 3 fields' },
      { row: 4, fields: ['ok', 'row'] },
    ]);
  });

  it('reports an unterminated quote at the end', async () => {
    expect(await all('a\n"open')).toEqual([{ row: 1, fields: ['a'] }, { row: 2, error: 'unterminated quoted field at the end of the file' }]);
  });

  it('never throws, and never yields a record longer than the bound', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 300, unit: fc.constantFrom('a', ',', '"', '\n', '\r', 'é') }), async (text) => {
        for (const r of await all(text, { maxRecordChars: 40 })) if ('fields' in r) expect(r.fields.join(',').length).toBeLessThanOrEqual(40);
      }),
      { seed: 20261123, numRuns: 500 },
    );
  });
});
