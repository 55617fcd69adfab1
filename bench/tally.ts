import { availableParallelism, cpus, platform, release, totalmem } from 'node:os';

/**
 * Answers counted as a load generator reports them: per status, 2xx latencies kept for exact
 * percentiles (autocannon's histogram rounds to whole milliseconds).
 */
export interface ResponseTally {
  readonly statusCodes: Record<string, number>;
  readonly latencies: number[];
  readonly ok: number;
  readonly non2xx: number;
  add(status: number, ms: number): void;
}

export function responseTally(): ResponseTally {
  const statusCodes: Record<string, number> = {};
  const latencies: number[] = [];
  let ok = 0;
  let non2xx = 0;
  return {
    statusCodes,
    latencies,
    get ok() {
      return ok;
    },
    get non2xx() {
      return non2xx;
    },
    add(status, ms) {
      statusCodes[status] = (statusCodes[status] ?? 0) + 1;
      if (status >= 200 && status < 300) {
        ok += 1;
        latencies.push(ms);
      } else {
        non2xx += 1;
      }
    },
  };
}

/** Ends the process when a run overruns its budget: a target that hangs must not keep the bench running. */
export function watchdog(name: string, budgetMs: number): void {
  setTimeout(() => {
    console.error(`${name}: still running after ${Math.round(budgetMs / 1000)} s; giving up`);
    process.exit(1);
  }, budgetMs).unref();
}

/** The machine line every bench report starts with. */
export function machineLine(): string {
  const cpu = cpus()[0]?.model ?? 'unknown';
  return `machine: ${availableParallelism()} CPUs (${cpu}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${platform()} ${release()}, Node ${process.version}`;
}

/** A markdown table (the reports paste into docs/performance.md): the first `left` columns left-aligned, the others right-aligned (numbers). */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[], left = 1): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => `| ${header.map((_, i) => (i < left ? (cells[i] ?? '').padEnd(widths[i]!) : (cells[i] ?? '').padStart(widths[i]!))).join(' | ')} |`;
  return [line(header), `|${widths.map((w, i) => (i < left ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...rows.map(line)];
}
