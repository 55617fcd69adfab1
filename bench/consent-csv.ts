import type { ChildHandle } from './children.ts';

/**
 * The consent CSV the import benches post (bench/consent-api.ts, bench/csv-import.ts): `n` rows of
 * `n / 10` customers × 10 categories, a third of them rejections, in the import's columns.
 */
export const CSV_HEADER = 'action,category,valid_until,timestamp,customer_id';

export interface CsvRow {
  action: 'accept' | 'reject';
  category: string;
  validUntil: string;
  timestamp: number;
  customerId: string;
}

export function csvRow(i: number): CsvRow {
  const action = i % 3 === 0 ? 'reject' : 'accept';
  return { action, category: `category_${i % 10}`, validUntil: action === 'accept' ? 'unlimited' : '', timestamp: 1_760_000_000 + i, customerId: `customer-${Math.floor(i / 10)}@example.com` };
}

export function csvFile(n: number): string {
  const lines = [CSV_HEADER];
  for (let i = 0; i < n; i++) {
    const r = csvRow(i);
    lines.push(`${r.action},${r.category},${r.validUntil},${r.timestamp},${r.customerId}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The all-scopes API key bench/servers/consent.ts prints after its ready line. */
export async function waitForKey(child: ChildHandle): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const m = child.messages.find((x): x is { apiKey: string } => typeof (x as { apiKey?: unknown }).apiKey === 'string');
    if (m !== undefined) return m.apiKey;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the consent server printed no API key');
}
