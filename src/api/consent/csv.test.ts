import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { csvEncoding, readCsv, utf8Prefix, type CsvEncoding, type CsvError, type CsvRecord } from './csv.ts';

async function all(text: string | string[] | Buffer[], options = {}): Promise<(CsvRecord | CsvError)[]> {
  const chunks = Array.isArray(text) ? text : [text];
  const out: (CsvRecord | CsvError)[] = [];
  for await (const r of readCsv(chunks.map((c) => (typeof c === 'string' ? Buffer.from(c) : c)), options)) out.push(r);
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

  it('refuses bytes that are not UTF-8 (never U+FFFD): the records before them are read, then one fatal error', async () => {
    const latin1 = Buffer.from('h\nJos\xe9,1\n', 'latin1');
    expect(await all([Buffer.from('h\nok,0\n'), latin1])).toEqual([
      { row: 1, fields: ['h'] },
      { row: 2, fields: ['ok', '0'] },
      { row: 3, fields: ['h'] },
      { row: 4, error: expect.stringMatching(/^not UTF-8: byte 0xE9 at offset 12 /), fatal: true },
    ]);
    // Cut inside a character at the very end.
    expect((await all([Buffer.from([0x61, 0x0a, 0xc3])])).at(-1)).toMatchObject({ fatal: true, error: expect.stringContaining('ends inside a character') });
  });

  it('reads a declared ISO-8859-1 or windows-1252 file into the right characters', async () => {
    const bytes = Buffer.from([...Buffer.from('id\n'), 0x4a, 0x6f, 0x73, 0xe9, 0x0a, 0x80, 0x0a]);
    expect(await all([bytes], { encoding: 'iso-8859-1' })).toEqual([{ row: 1, fields: ['id'] }, { row: 2, fields: ['José'] }, { row: 3, fields: ['\u0080'] }]);
    expect(await all([bytes], { encoding: 'windows-1252' })).toEqual([{ row: 1, fields: ['id'] }, { row: 2, fields: ['José'] }, { row: 3, fields: ['€'] }]);
    expect(['utf-8', 'UTF8', 'latin1', 'ISO-8859-1', 'windows-1252', 'cp1252', 'utf-16', 'toString'].map((c) => csvEncoding(c))).toEqual(['utf-8', 'utf-8', 'iso-8859-1', 'iso-8859-1', 'windows-1252', 'windows-1252', undefined, undefined]);
  });

  it('a UTF-8 BOM split across chunks is still dropped', async () => {
    expect(await all([Buffer.from([0xef]), Buffer.from([0xbb, 0xbf, 0x61, 0x0a])])).toEqual([{ row: 1, fields: ['a'] }]);
  });

  it('utf8Prefix agrees with a fatal TextDecoder on any bytes, however they are cut', async () => {
    const strict = new TextDecoder('utf-8', { fatal: true });
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 40 }), fc.integer({ min: 1, max: 7 }), async (bytes, size) => {
        let valid = true;
        try {
          strict.decode(bytes);
        } catch {
          valid = false;
        }
        const whole = utf8Prefix(bytes);
        expect(!whole.bad && whole.end === bytes.length).toBe(valid);
        // Read in chunks: the same text, or a fatal error exactly when the decoder throws.
        const chunks: Buffer[] = [];
        for (let i = 0; i < bytes.length; i += size) chunks.push(Buffer.from(bytes.subarray(i, i + size)));
        const out = await all(chunks, { maxRecordChars: 1000, maxFields: 1000 });
        expect(out.some((r) => 'fatal' in r)).toBe(!valid);
        if (valid) {
          const text = Buffer.from(bytes).toString('utf8').replace(/^\ufeff/, '');
          const joined = out.map((r) => ('fields' in r ? r.fields.join(',') : '')).join('');
          expect(joined.length).toBeLessThanOrEqual(text.length);
        }
      }),
      { seed: 20261202, numRuns: 1000 },
    );
    // The multi-byte edge cases of RFC 3629: overlong forms, surrogates, beyond U+10FFFF.
    for (const bad of [[0xc0, 0x80], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xf5], [0x80]]) expect(utf8Prefix(Uint8Array.from(bad)).bad, String(bad)).toBe(true);
    expect(utf8Prefix(Buffer.from('é😀\u{10FFFF}'))).toEqual({ end: 10, bad: false });
  });

  it.each<CsvEncoding>(['utf-8', 'iso-8859-1', 'windows-1252'])('%s: the same records however the file is cut', async (encoding) => {
    const file = Buffer.from('h1,h2\n"a,""b""",c\r\nd,"e\nf"\n', 'utf8');
    const whole = await all([file], { encoding });
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: file.length - 1 }), { maxLength: 6 }), async (cuts) => {
        const points = [0, ...new Set(cuts), file.length].sort((a, b) => a - b);
        expect(await all(points.slice(1).map((p, i) => file.subarray(points[i], p)), { encoding })).toEqual(whole);
      }),
      { seed: 20261202, numRuns: 100 },
    );
  });
});
