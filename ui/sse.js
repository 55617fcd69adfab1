// Server-sent events read from a fetch() body: EventSource cannot send the X-CSRF-Token header
// the session needs. The parser follows the HTML spec's event stream rules (fields, comments,
// multi-line data, CR / LF / CRLF line ends).

/** @typedef {{ event: string, data: string, id?: string }} SseMessage */

export class SseParser {
  constructor() {
    this.buffer = '';
    /** @type {string[]} */
    this.data = [];
    this.event = '';
    /** @type {string | undefined} */
    this.id = undefined;
    /** A CR ended the last chunk: an LF starting the next one belongs to it. */
    this.pendingCr = false;
  }

  /**
   * Takes the next piece of the stream; returns the messages it completed.
   * @param {string} chunk
   * @returns {SseMessage[]}
   */
  push(chunk) {
    let text = chunk;
    if (this.pendingCr && text.startsWith('\n')) text = text.slice(1);
    this.pendingCr = false;
    this.buffer += text;
    /** @type {SseMessage[]} */
    const out = [];
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buffer);
      if (m === null) break;
      // A CR at the very end may be the first half of a CRLF split across chunks.
      if (m[0] === '\r' && m.index === this.buffer.length - 1) this.pendingCr = true;
      const line = this.buffer.slice(0, m.index);
      this.buffer = this.buffer.slice(m.index + m[0].length);
      const message = this.line(line);
      if (message !== undefined) out.push(message);
    }
    return out;
  }

  /** @param {string} line @returns {SseMessage | undefined} */
  line(line) {
    if (line === '') {
      if (this.data.length === 0) {
        this.event = '';
        return undefined;
      }
      /** @type {SseMessage} */
      const message = { event: this.event === '' ? 'message' : this.event, data: this.data.join('\n') };
      if (this.id !== undefined) message.id = this.id;
      this.data = [];
      this.event = '';
      return message;
    }
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\u0000')) this.id = value;
    return undefined;
  }
}

/**
 * Reads an event stream answer until it ends or `signal` aborts, calling `onMessage` for each message.
 * @param {Response} res
 * @param {(m: SseMessage) => void} onMessage
 */
export async function readEventStream(res, onMessage) {
  if (res.body === null) return;
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  const parser = new SseParser();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    for (const m of parser.push(value)) onMessage(m);
  }
}
