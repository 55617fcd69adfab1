/** What every benchmark server process shares: reporting its port, and never outliving the bench. */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Longest a server process lives, whatever happens to the parent, unless `--lifetime-s` says otherwise (bench/soak.ts runs longer). */
const MAX_LIFETIME_MS = 10 * 60_000;

/**
 * Exits when the parent goes away (its end of our stdin closes) and after MAX_LIFETIME_MS (or
 * `--lifetime-s`), so a crashed or killed bench leaves no server behind.
 */
export function tieToParent(): void {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
  const lifetimeS = Number(arg('lifetime-s', String(MAX_LIFETIME_MS / 1000)));
  if (!(Number.isFinite(lifetimeS) && lifetimeS > 0)) throw new Error('--lifetime-s must be a positive number');
  setTimeout(() => {
    console.error(`${process.argv[1] ?? 'server'}: lifetime cap of ${lifetimeS} s reached, exiting`);
    process.exit(2);
  }, lifetimeS * 1000).unref();
}

/** The line the parent waits for. */
export function reportReady(server: Server): void {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ ready: true, port })}\n`);
}

/** `--name value` from argv. */
export function arg(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const value = i >= 0 ? process.argv[i + 1] : undefined;
  if (value !== undefined) return value;
  if (fallback !== undefined) return fallback;
  throw new Error(`missing --${name}`);
}

/** Plain servers stop on SIGTERM: close the listener and the idle sockets, then exit. */
export function exitOnSigterm(server: Server): void {
  process.on('SIGTERM', () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
