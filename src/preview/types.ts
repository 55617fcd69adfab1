/**
 * Preview (docs/preview.md): a marketer's own browser, marked by a short-lived signed token, sees
 * its hits' decisions live and sends them with the vendors' test modes (`test`) or not at all
 * (`silent`). What a hit carries from accept to its decisions (RequestSignals.preview).
 */
export type PreviewMode = 'test' | 'silent';

/** The preview a hit belongs to: read once per request at accept, never journaled. */
export interface PreviewMark {
  readonly id: string;
  readonly mode: PreviewMode;
  /** Test event codes by destination id (Meta, TikTok need one to send in test mode). */
  readonly testEventCodes: Readonly<Record<string, string>>;
}
