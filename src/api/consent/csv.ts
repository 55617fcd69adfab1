/**
 * A streaming CSV reader (RFC 4180: comma-separated, fields optionally in double quotes, `""` for a
 * quote inside one, CRLF or LF line ends) for consent imports. It holds one record at a time, never
 * the file: a 100 MB import goes through in constant memory. Untrusted input: a record longer than
 * `maxRecordChars` or with more than `maxFields` fields is reported as an error for its row and
 * skipped, not buffered. https://www.rfc-editor.org/rfc/rfc4180
 */
export interface CsvRecord {
  /** 1-based line number where the record starts (the header is row 1). */
  row: number;
  fields: string[];
}

export interface CsvError {
  row: number;
  error: string;
  /** The file cannot be read on from here (bytes not in its encoding): the last thing yielded. */
  fatal?: true;
}

/** The encodings a CSV import may declare (Content-Type `charset`); UTF-8 unless declared. */
export type CsvEncoding = 'utf-8' | 'iso-8859-1' | 'windows-1252';

const ENCODING_LABELS: Readonly<Record<string, CsvEncoding>> = {
  'utf-8': 'utf-8',
  utf8: 'utf-8',
  'iso-8859-1': 'iso-8859-1',
  'iso8859-1': 'iso-8859-1',
  'iso_8859-1': 'iso-8859-1',
  latin1: 'iso-8859-1',
  'latin-1': 'iso-8859-1',
  l1: 'iso-8859-1',
  'windows-1252': 'windows-1252',
  cp1252: 'windows-1252',
  'x-cp1252': 'windows-1252',
};

/** The encoding a `charset` parameter names, or undefined when it is not one we read. */
export function csvEncoding(charset: string): CsvEncoding | undefined {
  return Object.hasOwn(ENCODING_LABELS, charset.trim().toLowerCase()) ? ENCODING_LABELS[charset.trim().toLowerCase()] : undefined;
}

export interface CsvOptions {
  maxRecordChars?: number;
  maxFields?: number;
  /**
   * How bytes become text. UTF-8 (default) is strict: the first byte sequence that is not UTF-8
   * ends the file with a fatal error for its row, never a silent U+FFFD (two customers whose ids
   * differ only in such bytes would collapse into one). ISO-8859-1 maps each byte to the code
   * point of the same value (C1 controls included, which the id rule then refuses); windows-1252
   * as the WHATWG Encoding Standard defines it. https://encoding.spec.whatwg.org/#windows-1252
   */
  encoding?: CsvEncoding;
}

/**
 * How many leading bytes of `b` are complete, valid UTF-8 (RFC 3629 section 4: no overlong forms,
 * no surrogates, nothing above U+10FFFF), and whether it stops at an invalid sequence (`bad`) or
 * only at a sequence cut short by the end of `b` (the rest may come with the next chunk).
 * https://www.rfc-editor.org/rfc/rfc3629#section-4
 */
export function utf8Prefix(b: Uint8Array): { end: number; bad: boolean } {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    let n: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c === 0xe0) lo = 0xa0;
      else if (c === 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c === 0xf0) lo = 0x90;
      else if (c === 0xf4) hi = 0x8f;
    } else return { end: i, bad: true };
    for (let k = 1; k <= n; k++) {
      if (i + k >= b.length) return { end: i, bad: false };
      const t = b[i + k]!;
      if (k === 1 ? t < lo || t > hi : t < 0x80 || t > 0xbf) return { end: i, bad: true };
    }
    i += n + 1;
  }
  return { end: i, bad: false };
}

/** Text of a chunk in the declared encoding; for UTF-8, a fatal error at the first invalid byte. */
function decoderFor(encoding: CsvEncoding): { text(chunk: Buffer): { text: string; bad?: string }; end(): string | { bad: string } } {
  if (encoding === 'iso-8859-1') return { text: (chunk) => ({ text: chunk.toString('latin1') }), end: () => '' };
  if (encoding === 'windows-1252') {
    const d = new TextDecoder('windows-1252');
    return { text: (chunk) => ({ text: d.decode(chunk, { stream: true }) }), end: () => d.decode() };
  }
  let carry: Buffer = Buffer.alloc(0);
  let offset = 0;
  return {
    text(chunk) {
      const data = carry.length === 0 ? chunk : Buffer.concat([carry, chunk]);
      const { end, bad } = utf8Prefix(data);
      const text = data.toString('utf8', 0, end);
      if (bad) return { text, bad: `not UTF-8: byte 0x${data[end]!.toString(16).toUpperCase().padStart(2, '0')} at offset ${offset + end} (declare the charset in the Content-Type, e.g. text/csv; charset=iso-8859-1)` };
      offset += end;
      carry = data.subarray(end);
      return { text };
    },
    end: () => (carry.length === 0 ? '' : { bad: `not UTF-8: the file ends inside a character at offset ${offset}` }),
  };
}

export async function* readCsv(chunks: AsyncIterable<string | Buffer> | Iterable<string | Buffer>, options: CsvOptions = {}): AsyncGenerator<CsvRecord | CsvError> {
  const maxChars = options.maxRecordChars ?? 8192;
  const maxFields = options.maxFields ?? 64;
  const decoder = decoderFor(options.encoding ?? 'utf-8');
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  /** Inside quotes, a `"` was just seen: either the end of the field or the first of `""`. */
  let quoteSeen = false;
  let fieldStarted = false;
  let row = 1;
  let recordRow = 1;
  let chars = 0;
  let overflow: string | undefined;
  let first = true;

  const endField = (): void => {
    if (fields.length >= maxFields) overflow ??= `more than ${maxFields} fields`;
    else fields.push(field);
    field = '';
    fieldStarted = false;
  };

  function* endRecord(): Generator<CsvRecord | CsvError> {
    endField();
    const out: CsvRecord | CsvError = overflow !== undefined ? { row: recordRow, error: overflow } : { row: recordRow, fields };
    const blank = overflow === undefined && fields.length === 1 && fields[0] === '';
    fields = [];
    chars = 0;
    overflow = undefined;
    recordRow = row;
    if (!blank) yield out;
  }

  /** Reads decoded text on from where the last chunk stopped, yielding each record it completes. */
  function* consume(text: string): Generator<CsvRecord | CsvError> {
    if (first && text.length > 0) {
      // A UTF-8 byte order mark (spreadsheet exports) is not part of the first header name.
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      first = false;
    }
    for (let i = 0; i < text.length; i++) {
      const c = text[i]!;
      chars++;
      if (chars > maxChars && overflow === undefined) overflow = `record longer than ${maxChars} characters`;
      if (quoted) {
        if (quoteSeen) {
          quoteSeen = false;
          if (c === '"') {
            if (overflow === undefined) field += '"';
            continue;
          }
          quoted = false;
          // Fall through: c follows a closing quote.
        } else if (c === '"') {
          quoteSeen = true;
          continue;
        } else {
          if (c === '\n') row++;
          if (overflow === undefined) field += c;
          continue;
        }
      }
      if (c === '"' && !fieldStarted) {
        quoted = true;
        fieldStarted = true;
      } else if (c === ',') {
        endField();
      } else if (c === '\n') {
        row++;
        if (field.endsWith('\r')) field = field.slice(0, -1);
        yield* endRecord();
      } else {
        fieldStarted = true;
        if (overflow === undefined) field += c;
      }
    }
  }

  for await (const chunk of chunks) {
    if (typeof chunk === 'string') {
      yield* consume(chunk);
      continue;
    }
    const { text, bad } = decoder.text(chunk);
    yield* consume(text);
    if (bad !== undefined) {
      // The records before the bad bytes were yielded; the one they fall in is not.
      yield { row: recordRow, error: bad, fatal: true };
      return;
    }
  }
  const tail = decoder.end();
  if (typeof tail !== 'string') {
    yield { row: recordRow, error: tail.bad, fatal: true };
    return;
  }
  if (tail !== '') yield* consume(tail);
  if (quoted && !quoteSeen) {
    yield { row: recordRow, error: 'unterminated quoted field at the end of the file' };
    return;
  }
  if (field !== '' || fields.length > 0) {
    if (field.endsWith('\r')) field = field.slice(0, -1);
    yield* endRecord();
  }
}
