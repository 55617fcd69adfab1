/**
 * One JSON text per event object: the journal stores it (journal-payload.ts), and a batch whose
 * item is the event itself (a template mapping `"@path": "$"`, as the webhook's does) splices the
 * same text instead of serialising the event a second time. Valid because an accepted event is
 * never changed: every later step that differs (a truncated IP, a consent redaction) makes a new
 * object, which has no text here and is serialised on its own.
 */
const texts = new WeakMap<object, string>();

/** The event's JSON, made once. */
export function eventJson(event: object): string {
  let text = texts.get(event);
  if (text === undefined) {
    text = JSON.stringify(event);
    texts.set(event, text);
  }
  return text;
}

/** The JSON already made for this very object by eventJson, if any. */
export function knownJson(value: unknown): string | undefined {
  return typeof value === 'object' && value !== null ? texts.get(value) : undefined;
}
