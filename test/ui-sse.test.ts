import { describe, expect, it } from 'vitest';

/**
 * The dashboard's event-stream parser (ui/sse.js, browser code outside the TypeScript project:
 * imported by URL, so it is typed `any` here). The preview stream is read with it.
 */
const { SseParser } = (await import(new URL('../ui/sse.js', import.meta.url).href)) as { SseParser: new () => { push(chunk: string): { event: string; data: string; id?: string }[] } };

describe('ui/sse.js: server-sent events from fetch chunks', () => {
  it('reads named events, multi-line data, comments and ids', () => {
    const p = new SseParser();
    expect(p.push(': heartbeat\n\nevent: decision\ndata: {"a":1}\n\n')).toEqual([{ event: 'decision', data: '{"a":1}' }]);
    expect(p.push('data: one\ndata:two\nid: 7\n\n')).toEqual([{ event: 'message', data: 'one\ntwo', id: '7' }]);
    // A field without a colon, an unknown field, an event name with no data: nothing dispatched.
    expect(p.push('data\nretry: 10\n\nevent: end\n\n')).toEqual([{ event: 'message', data: '', id: '7' }]);
  });

  it('joins messages split across chunks, whatever the line ends', () => {
    const p = new SseParser();
    const text = 'event: decision\r\ndata: {"x":"y"}\r\n\r\nevent: end\rdata: {}\r\r';
    const out = [];
    // Every split point, a character at a time: CRLF halves land in different chunks.
    for (const ch of text) out.push(...p.push(ch));
    expect(out).toEqual([
      { event: 'decision', data: '{"x":"y"}' },
      { event: 'end', data: '{}' },
    ]);
  });

  it('dispatches nothing for an unfinished message', () => {
    const p = new SseParser();
    expect(p.push('event: decision\ndata: {"partial"')).toEqual([]);
    expect(p.push('}\n\n')).toEqual([{ event: 'decision', data: '{"partial"}' }]);
  });
});
