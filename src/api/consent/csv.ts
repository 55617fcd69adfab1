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
}

export interface CsvOptions {
  maxRecordChars?: number;
  maxFields?: number;
}

export async function* readCsv(chunks: AsyncIterable<string | Buffer> | Iterable<string | Buffer>, options: CsvOptions = {}): AsyncGenerator<CsvRecord | CsvError> {
  const maxChars = options.maxRecordChars ?? 8192;
  const maxFields = options.maxFields ?? 64;
  const decoder = new TextDecoder('utf-8', { fatal: false });
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

  for await (const chunk of chunks) {
    let text = typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    if (first) {
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
  const tail = decoder.decode();
  if (tail !== '') field += tail;
  if (quoted && !quoteSeen) {
    yield { row: recordRow, error: 'unterminated quoted field at the end of the file' };
    return;
  }
  if (field !== '' || fields.length > 0) {
    if (field.endsWith('\r')) field = field.slice(0, -1);
    yield* endRecord();
  }
}
