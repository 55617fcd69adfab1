import { PassThrough, Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isMultipartForm, readMultipartFields, type MultipartLimits, type MultipartOutcome } from './multipart-form.ts';

const LIMITS: MultipartLimits = { maxBytes: 64 * 1024, maxParts: 50, maxNameBytes: 384, maxValueBytes: 4096 };

function read(body: Buffer | string, contentType: string, limits = LIMITS): Promise<MultipartOutcome> {
  return new Promise((resolve) => {
    let calls = 0;
    readMultipartFields(Readable.from([Buffer.from(body)]), { 'content-type': contentType }, limits, (o) => {
      calls++;
      expect(calls).toBe(1);
      resolve(o);
    });
  });
}

/** The body and content type Node's own FormData encoder (undici, as a browser does) gives. */
async function encode(fields: [string, string][]): Promise<{ body: Buffer; contentType: string }> {
  const form = new FormData();
  for (const [k, v] of fields) form.append(k, v);
  const res = new Response(form);
  return { body: Buffer.from(await res.arrayBuffer()), contentType: res.headers.get('content-type') ?? '' };
}

const fieldsOf = (o: MultipartOutcome): [string, string][] | string => ('error' in o ? o.error.code : o.fields);

/**
 * FormData encoding rewrites what a multipart part cannot carry (HTML's "multipart/form-data
 * encoding algorithm", https://html.spec.whatwg.org/multipage/form-control-infrastructure.html#multipart-form-data):
 * every line break in a value becomes CRLF, and `"`, CR, LF in a name are percent-escaped. The
 * urlencoded twin of a field set is compared after the same rewriting of values; names are drawn
 * without those three characters, and without the other control characters, which a part header
 * cannot carry (RFC 9110 field values; busboy refuses the body: see the test below).
 */
const crlf = (v: string): string => v.replace(/\r\n|\r|\n/g, '\r\n');
const name = fc.oneof(
  fc.constantFrom('id', 'ev', 'eid', 'dl', 'cd[value]', 'cd[contents]', 'ud[em]', '', 'a b', 'ünï', '%41', '[]'),
  // eslint-disable-next-line no-control-regex
  fc.string({ unit: 'binary', maxLength: 20 }).filter((s) => !/["\u0000-\u0008\u000a-\u001f\u007f]/.test(s)),
);
const value = fc.oneof(fc.string({ unit: 'binary', maxLength: 60 }), fc.constantFrom('', '\r\n', '--', '\r\n--', '[{"id":"A","quantity":1}]'));

describe('readMultipartFields', () => {
  it('reads the text fields of a browser-encoded form, in order, repeats included', async () => {
    const { body, contentType } = await encode([['id', '1234'], ['ev', 'Purchase'], ['cd[x]', 'a&b=c'], ['ev', 'Again'], ['', 'nameless']]);
    expect(fieldsOf(await read(body, contentType))).toEqual([['id', '1234'], ['ev', 'Purchase'], ['cd[x]', 'a&b=c'], ['ev', 'Again'], ['', 'nameless']]);
  });

  it('property: any field set encoded as multipart reads as the same URLSearchParams as urlencoded', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(name, value), { maxLength: 20 }), async (pairs) => {
        const { body, contentType } = await encode(pairs);
        const o = await read(body, contentType);
        expect('fields' in o).toBe(true);
        if (!('fields' in o)) return;
        const viaMultipart = [...new URLSearchParams(o.fields)];
        const viaUrlencoded = [...new URLSearchParams(new URLSearchParams(pairs.map(([k, v]): [string, string] => [k, crlf(v)])).toString())];
        expect(viaMultipart).toEqual(viaUrlencoded);
      }),
      { seed: 20261201, numRuns: 300 },
    );
  });

  it('property: a body cut anywhere reads as an error or as the whole field set, never as a different one', async () => {
    const { body, contentType } = await encode([['id', '1234567890'], ['ev', 'Purchase'], ['cd[value]', '42.5']]);
    const whole = fieldsOf(await read(body, contentType));
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: body.length - 1 }), async (cut) => {
        const got = fieldsOf(await read(body.subarray(0, cut), contentType));
        expect([whole, 'TW_ERR_MALFORMED_BODY']).toContainEqual(got);
      }),
      { seed: 7, numRuns: 200 },
    );
    // Cut before the closing delimiter's `--`: the form is unfinished.
    expect(fieldsOf(await read(body.subarray(0, body.length - 4), contentType))).toBe('TW_ERR_MALFORMED_BODY');
  });

  it('property: garbage bodies and content types never throw, and always end with one outcome', async () => {
    const ctype = fc.oneof(
      fc.constant('multipart/form-data; boundary=x'),
      fc.string({ maxLength: 40 }).map((s) => `multipart/form-data; ${s}`),
      fc.string({ maxLength: 40 }),
    );
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 400 }).map((a) => Buffer.from(a)),
      fc.array(fc.constantFrom('--x', '\r\n', 'Content-Disposition: form-data; name="a"', 'filename="f"', 'Content-Type: application/octet-stream', '--', 'v', '\r\n\r\n'), { maxLength: 30 }).map((a) => Buffer.from(a.join(''))),
    );
    await fc.assert(
      fc.asyncProperty(bytes, ctype, async (body, contentType) => {
        const o = await read(body, contentType, { ...LIMITS, maxBytes: 300, maxParts: 5 });
        if ('fields' in o) expect(o.fields.length).toBeLessThanOrEqual(5);
        else expect(['TW_ERR_MALFORMED_BODY', 'TW_ERR_PAYLOAD_TOO_LARGE']).toContain(o.error.code);
      }),
      { seed: 99, numRuns: 400 },
    );
  });

  it('bounds total bytes, parts, name and value sizes', async () => {
    const many = await encode(Array.from({ length: 6 }, (_, i): [string, string] => [`p${i}`, '1']));
    expect(fieldsOf(await read(many.body, many.contentType, { ...LIMITS, maxParts: 6 }))).toHaveLength(6);
    expect(fieldsOf(await read(many.body, many.contentType, { ...LIMITS, maxParts: 5 }))).toBe('TW_ERR_MALFORMED_BODY');
    expect(fieldsOf(await read(many.body, many.contentType, { ...LIMITS, maxBytes: many.body.length }))).toHaveLength(6);
    expect(fieldsOf(await read(many.body, many.contentType, { ...LIMITS, maxBytes: many.body.length - 1 }))).toBe('TW_ERR_PAYLOAD_TOO_LARGE');

    const long = await encode([['k', 'é'.repeat(10)]]);
    expect(fieldsOf(await read(long.body, long.contentType, { ...LIMITS, maxValueBytes: 20 }))).toEqual([['k', 'é'.repeat(10)]]);
    expect(fieldsOf(await read(long.body, long.contentType, { ...LIMITS, maxValueBytes: 19 }))).toBe('TW_ERR_MALFORMED_BODY');
    const named = await encode([['n'.repeat(11), 'v']]);
    expect(fieldsOf(await read(named.body, named.contentType, { ...LIMITS, maxNameBytes: 11 }))).toHaveLength(1);
    expect(fieldsOf(await read(named.body, named.contentType, { ...LIMITS, maxNameBytes: 10 }))).toBe('TW_ERR_MALFORMED_BODY');
  });

  it('refuses a file part, a missing boundary and a body in another boundary', async () => {
    const form = new FormData();
    form.append('id', '1');
    form.append('upload', new Blob(['data']), 'f.txt');
    const res = new Response(form);
    const withFile = await read(Buffer.from(await res.arrayBuffer()), res.headers.get('content-type') ?? '');
    expect(withFile).toMatchObject({ error: { code: 'TW_ERR_MALFORMED_BODY', message: expect.stringMatching(/file part/) as unknown } });
    expect(fieldsOf(await read('--x\r\n\r\n--x--', 'multipart/form-data'))).toBe('TW_ERR_MALFORMED_BODY');
    const { body } = await encode([['id', '1']]);
    expect(fieldsOf(await read(body, 'multipart/form-data; boundary=other'))).toBe('TW_ERR_MALFORMED_BODY');
    const control = await encode([['id', '1'], ['a\u0001', 'v']]);
    expect(fieldsOf(await read(control.body, control.contentType))).toBe('TW_ERR_MALFORMED_BODY');
  });

  it('regression: a part in a charset busboy cannot decode was read as the text "undefined"', async () => {
    const body = '--b\r\nContent-Disposition: form-data; name="id"\r\n\r\n123\r\n--b\r\nContent-Disposition: form-data; name="ev"\r\nContent-Type: text/plain; charset=koi8-r\r\n\r\nLead\r\n--b--\r\n';
    const out = await read(body, 'multipart/form-data; boundary=b');
    expect(out).toMatchObject({ error: { code: 'TW_ERR_MALFORMED_BODY', message: expect.stringMatching(/charset/) as unknown } });
  });

  it('reports a connection closed before the end of the body, and a stream error, once', async () => {
    const { body, contentType } = await encode([['id', '1']]);
    for (const cut of [(s: PassThrough) => s.destroy(), (s: PassThrough) => s.destroy(new Error('socket hang up'))]) {
      const stream = new PassThrough();
      const outcomes: MultipartOutcome[] = [];
      const done = new Promise<void>((resolve) => {
        readMultipartFields(stream, { 'content-type': contentType }, LIMITS, (o) => {
          outcomes.push(o);
          resolve();
        });
      });
      stream.write(body.subarray(0, 20));
      cut(stream);
      await done;
      await new Promise((r) => setImmediate(r));
      expect(outcomes.map(fieldsOf)).toEqual(['TW_ERR_MALFORMED_BODY']);
    }
  });

  it('reports a stream already destroyed when the read begins (aborted before the route ran)', async () => {
    const stream = new PassThrough();
    stream.on('error', () => undefined);
    stream.destroy(new Error('aborted'));
    const o = await new Promise<MultipartOutcome>((resolve) => readMultipartFields(stream, { 'content-type': 'multipart/form-data; boundary=x' }, LIMITS, resolve));
    expect(fieldsOf(o)).toBe('TW_ERR_MALFORMED_BODY');
  });

  it('recognises the multipart content type', () => {
    expect(isMultipartForm('multipart/form-data; boundary=----WebKitFormBoundaryA1')).toBe(true);
    expect(isMultipartForm('Multipart/Form-Data')).toBe(true);
    expect(isMultipartForm('multipart/mixed; boundary=x')).toBe(false);
    expect(isMultipartForm(undefined)).toBe(false);
  });
});
