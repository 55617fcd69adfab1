/**
 * The benchmark's child processes: each server (Tagwarden, the baselines, the vendor sink) runs in
 * its own Node process so it does not share an event loop with the load generator. A child
 * announces `{"ready":true,"port":N}` on stdout; it exits when asked (SIGTERM), when its stdin
 * closes (the parent died), or after a hard lifetime cap. The parent kills whatever is left on exit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

const live = new Set<ChildProcess>();

function killAll(): void {
  for (const proc of live) {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  }
  live.clear();
}

let hooksInstalled = false;

/** Kills every child on exit, and on SIGINT/SIGTERM before exiting. Idempotent. */
export function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      console.error(`\nbench: ${signal}, stopping the servers`);
      killAll();
      process.exit(130);
    });
  }
}

export interface ChildHandle {
  name: string;
  pid: number;
  port: number;
  /** JSON lines the child printed after the ready line (e.g. a summary on shutdown). */
  messages: unknown[];
  /** Number of stderr lines, and the first few of them. */
  stderr: { lines: number; head: string[] };
  /** SIGTERM, wait up to `timeoutMs` for the exit, then SIGKILL. Resolves with the exit code or signal. */
  stop(timeoutMs?: number): Promise<string>;
}

export interface StartOptions {
  /** Extra arguments for node itself (e.g. --cpu-prof). */
  nodeArgs?: string[];
  readyTimeoutMs?: number;
}

const STDERR_HEAD = 20;

/** Starts `node <script> <args>` and resolves once it reported its port. */
export async function startChild(name: string, script: string, args: string[], options: StartOptions = {}): Promise<ChildHandle> {
  installExitHooks();
  const proc = spawn(process.execPath, [...(options.nodeArgs ?? []), script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  live.add(proc);
  let spawnError: Error | undefined;
  proc.on('error', (err) => {
    spawnError = err;
  });
  const exited = once(proc, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  void exited.then(() => live.delete(proc));

  const messages: unknown[] = [];
  const stderr = { lines: 0, head: [] as string[] };
  createInterface({ input: proc.stderr }).on('line', (line) => {
    stderr.lines += 1;
    if (stderr.head.length < STDERR_HEAD) stderr.head.push(line);
  });
  const stdoutDone = new Promise<void>((resolve) => {
    const rl = createInterface({ input: proc.stdout });
    rl.on('line', (line) => {
      try {
        messages.push(JSON.parse(line));
      } catch {
        messages.push(line);
      }
    });
    rl.on('close', resolve);
  });

  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${name}: not ready after ${options.readyTimeoutMs ?? 20_000} ms; stderr:\n${stderr.head.join('\n')}`));
    }, options.readyTimeoutMs ?? 20_000);
    const poll = setInterval(() => {
      const ready = messages.find((m): m is { ready: true; port: number } => typeof m === 'object' && m !== null && (m as { ready?: unknown }).ready === true);
      if (ready !== undefined) {
        clearTimeout(timer);
        clearInterval(poll);
        messages.splice(messages.indexOf(ready), 1);
        resolve(ready.port);
      }
    }, 20);
    void exited.then(([code, signal]) => {
      clearTimeout(timer);
      clearInterval(poll);
      // Give stderr a moment to be read so the error says why.
      const why = spawnError?.message ?? String(code ?? signal);
      setTimeout(() => reject(new Error(`${name}: exited before it was ready (${why}); stderr:\n${stderr.head.join('\n')}`)), 50);
    });
  });

  return {
    name,
    pid: proc.pid!,
    port,
    messages,
    stderr,
    async stop(timeoutMs = 15_000) {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const force = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
        await exited;
        clearTimeout(force);
      }
      await stdoutDone;
      const [code, signal] = await exited;
      return code !== null ? `exit ${code}` : `signal ${signal}`;
    },
  };
}
