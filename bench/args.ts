/** Command-line number options of the benchmarks: `--name <n>` read as a positive (or, allowed, zero) number. */
export function positive(name: string, value: string, integer: boolean, allowZero = false): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || (n === 0 && !allowZero) || (integer && !Number.isInteger(n))) {
    throw new Error(`--${name} must be a ${allowZero ? 'non-negative' : 'positive'} ${integer ? 'integer' : 'number'}, got ${value}`);
  }
  return n;
}
