// Tagwarden's operator CLI: `npx tagwarden keys create|list|revoke`, `audit verify`,
// `dlq list|replay|purge`, `validate`, `explain` (bin/tagwarden.mjs runs this
// file under the pinned Node; `npm run cli -- …` too). A separate entry from
// main.ts (which serves); `runCli` does the work so tests call it without spawning a process.
import { existsSync } from 'node:fs';
import { DEFAULT_KEY_CACHE_TTL_MS } from './api/auth.ts';
import { createApiKey, listApiKeys, parseScopes, revokeApiKey, SCOPES, type ApiKeyInfo } from './api/keys.ts';
import { configPathFrom, loadConfigFile, processEnv, type Config } from './config/load.ts';
import { deadBatchSchema, deadListSchema, toDeadFilter } from './api/dead-letters/filter.ts';
import { replayMatching } from './api/dead-letters/replay.ts';
import { deadLetterView, type DeadLetterView } from './api/dead-letters/view.ts';
import { listDead, purgeDead, type DeadFilter } from './store/journal.ts';
import { ValidationError } from './errors.ts';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, type CommandIo } from './cli/exit.ts';
import { explainCommand } from './cli/explain.ts';
import { validateCommand } from './cli/validate.ts';
import { systemClock, type Clock } from './lib/clock.ts';
import type { Db } from './store/db.ts';
import { MAX_RECEIPT_PAGE, queryReceipts } from './store/receipts.ts';
import { openDb } from './store/open.ts';
import { verifyAuditState } from './store/audit.ts';

export const DEFAULT_STORE_URL = 'sqlite:./data/tagwarden.db';
const DEFAULT_CONFIG_PATH = 'config/tagwarden.yaml';

export interface CliIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
  /** For `${VAR}` in the config and TAGWARDEN_CONFIG; the process environment when omitted. */
  env?: Readonly<Record<string, string | undefined>>;
  /** When keys are created and revoked and dead letters replayed; the system clock when omitted. */
  clock?: Clock;
}

export { EXIT_FAILED, EXIT_OK, EXIT_USAGE } from './cli/exit.ts';

export const USAGE = `Usage: npx tagwarden keys <command> [options]
       npx tagwarden audit verify [options]
       npx tagwarden dlq <command> [filters] [options]
       npx tagwarden receipts <visitorId> [--site <id>] [--limit <n>] [--json]
       npx tagwarden validate [<config>] [--json]
       npx tagwarden explain <hit-file> [--config <path>] [--ip <address>] [--json]
       (or npm run cli -- <command> …)

Commands:
  keys create --scopes <s1,s2> [--label <text>]   create an API key; it is printed once, only its SHA-256 is stored
  keys list                                      list keys (id, label, scopes, dates; never the key)
  keys revoke <id>                               revoke a key (running servers drop it within ${DEFAULT_KEY_CACHE_TTL_MS / 1000} s)
  audit verify                                   check the audit log's hash chain (exit 1 when it is broken)
  dlq list                                       list dead letters (deliveries given up), oldest first; never the event's data
  dlq replay                                     send matching dead letters again (consent re-checked); prints how many
  dlq purge --yes                                delete matching dead letters for good
  receipts <visitorId>                           a visitor's decision receipts, oldest first (docs/receipts.md)
  validate [<config>]                            check a config and its templates as the server starts them (exit 1 with every problem); opens nothing
  explain <hit-file>                             what POST /debug/explain answers for the file (its body: a Segment event or {"hit": {...}}), for the config

Dead-letter filters (all optional; none: every dead letter of the site):
  --destination <id>   one destination
  --reason <reason>    one reason (e.g. status_400, max_total_time)
  --since <time>       died at or after (ISO 8601, unix seconds or milliseconds)
  --before <time>      died before
  --limit <n>          at most n rows (list: default 100, at most 1000)

Options:
  --store <url>     the store (sqlite:<path> or postgres://…); default: store.url of the config, else ${DEFAULT_STORE_URL}
  --config <path>   the configuration file (default: TAGWARDEN_CONFIG, else ${DEFAULT_CONFIG_PATH})
  --site <id>       the site of dlq commands (default: site.id of the config)
  --yes             confirm dlq purge
  --ip <address>    the client's address of an explained hit (default: none)
  --json            machine-readable output
  --help            this text

Scopes: ${SCOPES.join(', ')} (admin implies every scope).
`;

const DLQ_FLAGS = ['destination', 'reason', 'since', 'before', 'limit'] as const;
const VALUE_FLAGS = new Set(['scopes', 'label', 'store', 'config', 'site', 'ip', ...DLQ_FLAGS]);
const BOOL_FLAGS = new Set(['json', 'help', 'yes']);

interface Parsed {
  positional: string[];
  flags: Map<string, string>;
  json: boolean;
  help: boolean;
  yes: boolean;
}

function parseArgs(argv: readonly string[]): Parsed {
  const positional: string[] = [];
  const flags = new Map<string, string>();
  let json = false;
  let help = false;
  let yes = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h') {
      help = true;
      continue;
    }
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    if (BOOL_FLAGS.has(name) && eq < 0) {
      if (name === 'json') json = true;
      else if (name === 'yes') yes = true;
      else help = true;
    } else if (VALUE_FLAGS.has(name)) {
      const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
      if (value === undefined || (eq < 0 && value.startsWith('--'))) throw new UsageError(`--${name} needs a value`);
      if (flags.has(name)) throw new UsageError(`--${name} given twice`);
      flags.set(name, value);
    } else {
      throw new UsageError(`unknown option ${arg}`);
    }
  }
  return { positional, flags, json, help, yes };
}

/** The config file, when one is named or the default one exists; undefined otherwise. */
function configOf(argv: readonly string[], p: Parsed, env: Readonly<Record<string, string | undefined>>): Config | undefined {
  const explicit = p.flags.has('config') || (env.TAGWARDEN_CONFIG ?? '') !== '';
  const path = configPathFrom(argv, env);
  // No config anywhere is fine for the CLI: the default store. A named config must load.
  if (!explicit && !existsSync(path)) return undefined;
  return loadConfigFile(path, { env });
}

/** `--store`, else `store.url` of the config file (when it has one), else the default SQLite file. */
function storeUrl(argv: readonly string[], p: Parsed, env: Readonly<Record<string, string | undefined>>, config = p.flags.has('store') ? undefined : configOf(argv, p, env)): string {
  const store = p.flags.get('store');
  if (store !== undefined) return store;
  const url = (config as { store?: { url?: unknown } } | undefined)?.store?.url;
  return typeof url === 'string' && url !== '' ? url : DEFAULT_STORE_URL;
}

function iso(ms: number | null): string {
  return ms === null ? '-' : new Date(ms).toISOString();
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ')).join('\n') + '\n';
}

function listText(keys: ApiKeyInfo[]): string {
  if (keys.length === 0) return 'no API keys (create one with: npx tagwarden keys create --scopes …)\n';
  return table([
    ['ID', 'LABEL', 'SCOPES', 'CREATED', 'LAST USED', 'REVOKED'],
    ...keys.map((k) => [k.id, k.label === '' ? '-' : k.label, k.scopes.join(','), iso(k.createdAt), iso(k.lastUsedAt), iso(k.revokedAt)]),
  ]);
}

/** The dlq filters of the flags, validated by the API's schema (one rule for both); errors name the flag. */
function dlqFilter(p: Parsed, siteId: string, list: boolean): DeadFilter {
  const raw: Record<string, string> = {};
  for (const flag of DLQ_FLAGS) {
    const v = p.flags.get(flag);
    if (v !== undefined) raw[flag === 'destination' ? 'destinationId' : flag] = v;
  }
  const parsed = (list ? deadListSchema : deadBatchSchema).safeParse(raw);
  if (!parsed.success) {
    const flagOf = (path: string): string => `--${path === 'destinationId' ? 'destination' : path}`;
    throw new UsageError(parsed.error.issues.map((i) => `${flagOf(i.path.map(String).join('.'))}: ${i.message}`).join('; '));
  }
  try {
    return toDeadFilter(siteId, parsed.data);
  } catch (e) {
    if (e instanceof ValidationError) throw new UsageError('--since must be earlier than --before');
    throw e;
  }
}

/** The vendor's answer on one table line: whitespace folded, cut at 60 characters. */
function oneLine(text: string | null, max = 60): string {
  if (text === null || text === '') return '-';
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

function deadText(rows: DeadLetterView[]): string {
  if (rows.length === 0) return 'no dead letters\n';
  return table([
    ['HIT', 'DESTINATION', 'CODE', 'REASON', 'ATTEMPTS', 'STATUS', 'DIED', 'MESSAGE ID', 'EVENT', 'VENDOR ANSWER'],
    ...rows.map((d) => [String(d.hitId), d.destinationId, d.code ?? '-', d.reason ?? '-', String(d.attempts), d.lastStatus === null ? '-' : String(d.lastStatus), d.diedAt, oneLine(d.messageId, 40), oneLine(d.event ?? d.type, 40), oneLine(d.excerpt)]),
  ]);
}

/** `dlq list|replay|purge`: validated before the store is opened. */
function dlqCommand(command: string | undefined, rest: string[], p: Parsed, config: Config | undefined, out: (s: string) => void, clock: Clock): (db: Db) => Promise<number> {
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  if (p.flags.has('scopes') || p.flags.has('label')) throw new UsageError('dlq takes no --scopes or --label');
  const siteId = p.flags.get('site') ?? config?.site.id;
  if (siteId === undefined) throw new UsageError('dlq needs the site: --site <id>, or a config file with site.id');
  if (command === 'list') {
    const filter = dlqFilter(p, siteId, true);
    return async (db) => {
      const rows = (await listDead(db, filter)).map(deadLetterView);
      out(p.json ? `${JSON.stringify(rows)}\n` : deadText(rows));
      return EXIT_OK;
    };
  }
  if (command === 'replay') {
    const filter = dlqFilter(p, siteId, false);
    const leaseS = (config?.delivery.journal.leaseMs ?? 30_000) / 1000;
    return async (db) => {
      const replayed = await replayMatching(db, filter, clock.now());
      if (p.json) out(`${JSON.stringify({ replayed })}\n`);
      else out(`Replayed ${replayed} dead letter${replayed === 1 ? '' : 's'}. A running Tagwarden on this store sends them again within ${leaseS} s (delivery.journal.leaseMs), consent re-checked first.\n`);
      return EXIT_OK;
    };
  }
  if (command === 'purge') {
    const filter = dlqFilter(p, siteId, false);
    if (!p.yes) throw new UsageError('dlq purge deletes dead letters and their events for good: add --yes (check first with dlq list and the same filters)');
    return async (db) => {
      const purged = await purgeDead(db, filter);
      out(p.json ? `${JSON.stringify({ purged })}\n` : `Purged ${purged} dead letter${purged === 1 ? '' : 's'}.\n`);
      return EXIT_OK;
    };
  }
  throw new UsageError(command === undefined ? 'dlq needs a command: list, replay or purge' : `unknown command "dlq ${command}" (expected: list, replay, purge)`);
}

/** `validate [<config>]` and `explain <hit-file>`: the config and a file, never the store. */
function fileCommand(group: 'validate' | 'explain', arg: string | undefined, rest: string[], argv: readonly string[], p: Parsed, env: Readonly<Record<string, string | undefined>>, clock: Clock, io: CommandIo): Promise<number> {
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  for (const flag of ['store', 'site', 'scopes', 'label', ...(group === 'validate' ? ['ip'] : []), ...DLQ_FLAGS]) if (p.flags.has(flag)) throw new UsageError(`${group} takes no --${flag}`);
  if (p.yes) throw new UsageError(`${group} takes no --yes`);
  if (group === 'validate') {
    if (arg !== undefined && p.flags.has('config')) throw new UsageError('validate takes the config once: <config> or --config');
    return Promise.resolve(validateCommand(arg ?? configPathFrom(argv, env), env, p.json, io));
  }
  if (arg === undefined) throw new UsageError('explain needs the hit file: a JSON file holding what POST /debug/explain takes (docs/explain.md)');
  return explainCommand({ configPath: configPathFrom(argv, env), hitFile: arg, ip: p.flags.get('ip'), env, clock, json: p.json }, io);
}

/** Runs one CLI invocation; resolves with the exit code. Never throws. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const env = io.env ?? processEnv();
  const clock = io.clock ?? systemClock;
  const out = (s: string) => io.stdout.write(s);
  const err = (s: string) => io.stderr.write(s);
  let db: Db | undefined;
  try {
    const p = parseArgs(argv);
    if (p.help || p.positional[0] === 'help') {
      out(USAGE);
      return EXIT_OK;
    }
    if (argv.length === 0) {
      err(USAGE);
      return EXIT_USAGE;
    }
    const [group, command, ...rest] = p.positional;
    if (group === 'validate' || group === 'explain') return await fileCommand(group, command, rest, argv, p, env, clock, { out, err });
    if (p.flags.has('ip')) throw new UsageError('--ip is an option of explain');
    if (group === 'audit') {
      if (command !== 'verify' || rest.length > 0) throw new UsageError('audit takes one command: verify');
      db = await openDb(storeUrl(argv, p, env));
      // The chain and the state it implies (src/store/replay.ts): a direct edit of either fails.
      const verdict = await verifyAuditState(db);
      if (p.json) out(`${JSON.stringify(verdict)}\n`);
      else if (verdict.ok) out(`audit chain intact: ${verdict.rows} rows; stored state matches the log\n`);
      else if (verdict.reason === 'state_mismatch') {
        const m = verdict.mismatch;
        out(`stored state DIFFERS from the audit log: site ${m.siteId}, ${m.subject}${m.item === undefined ? '' : `, item ${m.item}`}, ${m.field}: stored ${JSON.stringify(m.stored)}, log implies ${JSON.stringify(m.implied)}\n`);
      } else if (verdict.reason === 'unknown_action' || verdict.reason === 'malformed_row') out(`audit log does not replay at seq ${verdict.brokenAt} (${verdict.reason}: ${verdict.detail})\n`);
      else out(`audit chain BROKEN at seq ${verdict.brokenAt} (${verdict.reason}) after ${verdict.rows} rows\n`);
      return verdict.ok ? EXIT_OK : EXIT_FAILED;
    }
    if (group === 'dlq') {
      const config = p.flags.has('store') && p.flags.has('site') ? undefined : configOf(argv, p, env);
      const run = dlqCommand(command, rest, p, config, out, clock);
      db = await openDb(storeUrl(argv, p, env, config));
      return await run(db);
    }
    if (group === 'receipts') {
      if (command === undefined || rest.length > 0) throw new UsageError('receipts takes one visitor id');
      const config = p.flags.has('store') && p.flags.has('site') ? undefined : configOf(argv, p, env);
      const siteId = p.flags.get('site') ?? config?.site.id;
      if (siteId === undefined) throw new UsageError('receipts needs the site: --site <id>, or a config file with site.id');
      const limit = Number(p.flags.get('limit') ?? '100');
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_RECEIPT_PAGE) throw new UsageError(`--limit: 1 to ${String(MAX_RECEIPT_PAGE)}`);
      db = await openDb(storeUrl(argv, p, env, config));
      const page = await queryReceipts(db, { siteId, visitorId: command }, limit);
      if (p.json) out(`${JSON.stringify(page.receipts)}\n`);
      else if (page.receipts.length === 0) out(`no receipts for visitor ${command}\n`);
      else for (const r of page.receipts) out(`${new Date(r.decidedAt).toISOString()}  ${r.messageId}  ${r.destinationId}  ${r.phase}  ${r.outcome}  ${r.reason}\n`);
      return EXIT_OK;
    }
    if (group !== 'keys') throw new UsageError(`unknown command "${group ?? ''}" (expected: keys, audit, dlq, receipts, validate, explain)`);
    for (const flag of ['site', ...DLQ_FLAGS]) if (p.flags.has(flag)) throw new UsageError(`--${flag} is an option of dlq commands`);
    if (p.yes) throw new UsageError('--yes is an option of dlq purge');

    // Everything is validated before the store is opened.
    let run: (db: Db) => Promise<number>;
    if (command === 'create') {
      if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
      const raw = p.flags.get('scopes');
      if (raw === undefined) throw new UsageError(`keys create needs --scopes (any of ${SCOPES.join(', ')})`);
      const scopes = parseScopes(raw.split(',').map((s) => s.trim()).filter((s) => s !== ''));
      const label = p.flags.get('label') ?? '';
      run = async (db) => {
        const created = await createApiKey(db, { label, scopes, now: clock.now() });
        if (p.json) {
          out(JSON.stringify({ id: created.id, key: created.key, label, scopes: created.scopes }) + '\n');
        } else {
          out(`Created API key ${created.id}${label === '' ? '' : ` "${label}"`} with scopes ${created.scopes.join(',')}.\n`);
          out('Copy the key now: it is shown only this once (Tagwarden stores only its SHA-256).\n\n');
          out(`  ${created.key}\n\n`);
          out('Send it as X-API-Key: <key> or Authorization: Bearer <key>.\n');
        }
        return EXIT_OK;
      };
    } else if (command === 'list') {
      if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
      if (p.flags.has('scopes') || p.flags.has('label')) throw new UsageError('keys list takes no --scopes or --label');
      run = async (db) => {
        const keys = await listApiKeys(db);
        out(p.json ? JSON.stringify(keys) + '\n' : listText(keys));
        return EXIT_OK;
      };
    } else if (command === 'revoke') {
      const [id, extra] = rest;
      if (id === undefined) throw new UsageError('keys revoke needs the key id (see keys list)');
      if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`);
      if (p.flags.has('scopes') || p.flags.has('label')) throw new UsageError('keys revoke takes no --scopes or --label');
      run = async (db) => {
        if (await revokeApiKey(db, id, clock.now())) {
          out(`Revoked ${id}. Running servers reject it within ${DEFAULT_KEY_CACHE_TTL_MS / 1000} s (their key cache).\n`);
          return EXIT_OK;
        }
        const known = (await listApiKeys(db)).find((k) => k.id === id);
        if (known === undefined) {
          err(`tagwarden: no API key ${id}\n`);
          return EXIT_FAILED;
        }
        out(`${id} was already revoked (${iso(known.revokedAt)}).\n`);
        return EXIT_OK;
      };
    } else {
      throw new UsageError(command === undefined ? 'keys needs a command: create, list or revoke' : `unknown command "keys ${command}" (expected: create, list, revoke)`);
    }

    db = await openDb(storeUrl(argv, p, env));
    return await run(db);
  } catch (e) {
    if (e instanceof ValidationError) {
      err(`tagwarden: ${e.message}\n\n${USAGE}`);
      return EXIT_USAGE;
    }
    err(`tagwarden: ${e instanceof Error ? e.message : String(e)}\n`);
    return EXIT_FAILED;
  } finally {
    await db?.close().catch((e: unknown) => err(`tagwarden: closing the store: ${e instanceof Error ? e.message : String(e)}\n`));
  }
}

if (import.meta.main) {
  runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr }).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      console.error(e);
      process.exitCode = EXIT_FAILED;
    },
  );
}
