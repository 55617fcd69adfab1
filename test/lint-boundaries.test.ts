import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';

/**
 * The import boundaries of eslint.config.mjs (docs/architecture.md) fail `npm run lint` on a
 * forbidden import. Each case lints a few lines as if they were a file of that part (lintText with
 * a filePath: nothing is written); the real config is loaded, only type-aware parsing is turned off
 * because the probe files are not in the TypeScript project (and it keeps this test fast).
 */
const ROOT = new URL('..', import.meta.url).pathname;
const eslint = new ESLint({
  cwd: ROOT,
  overrideConfig: [tseslint.configs.disableTypeChecked, { languageOptions: { parserOptions: { projectService: false, project: null } } }],
  ruleFilter: ({ ruleId }) => ruleId === 'no-restricted-imports',
});

/** The no-restricted-imports messages for `code` linted as `filePath`; a parse error fails the test. */
async function restricted(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(`${code}\nexport {};\n`, { filePath });
  const fatal = result!.messages.filter((m) => m.fatal === true);
  expect(fatal).toEqual([]);
  return result!.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

interface Part {
  name: string;
  file: string;
  /** Its message names the rule. */
  rule: string;
  forbidden: string[];
  allowed: string;
}

const PARTS: Part[] = [
  {
    name: 'policy',
    file: 'src/policy/probe.ts',
    rule: 'policy is pure',
    forbidden: [
      "import { openDb } from '../store/open.ts';",
      "import { createDelivery } from '../delivery/delivery.ts';",
      "import { jsonBody } from '../http/body.ts';",
      "import { TCString } from '@iabtechlabtcf/core';",
      "import { LRUCache } from 'lru-cache';",
      "import { readFileSync } from 'node:fs';",
      // The TCF decoder through consent/: values are forbidden, types are fine (below).
      "import { checkTcf } from '../consent/tcf.ts';",
    ],
    allowed: [
      "import type { ConsentState } from '../consent/state.ts';",
      "import type { BoundDestination } from '../destinations/types.ts';",
      "import { systemClock } from '../lib/clock.ts';",
    ].join('\n'),
  },
  {
    name: 'store',
    file: 'src/store/probe.ts',
    rule: 'storage knows no HTTP and no policy',
    forbidden: [
      "import { jsonBody } from '../http/body.ts';",
      "import { assertWebhookUrl } from '../api/url-guard.ts';",
      "import { decide } from '../policy/decide.ts';",
      "import { createDelivery } from '../delivery/delivery.ts';",
      "import { request } from 'undici';",
      "import express from 'express';",
      "import { buildReceipt } from '../receipts/receipt.ts';",
    ],
    allowed: ["import { randomBytes } from 'node:crypto';", "import pg from 'pg';", "import type { Db } from './db.ts';", "import type { Receipt } from '../receipts/receipt.ts';"].join('\n'),
  },
  {
    name: 'receipts',
    file: 'src/receipts/probe.ts',
    rule: 'receipts know no HTTP',
    forbidden: [
      "import express from 'express';",
      "import { request } from 'undici';",
      "import { jsonBody } from '../http/body.ts';",
      "import { apiGuard } from '../api/guard.ts';",
      "import { createPipeline } from '../pipeline/create-pipeline.ts';",
      "import { createDelivery } from '../delivery/delivery.ts';",
      "import { createConsentResolver } from '../consent/resolve.ts';",
    ],
    allowed: [
      "import type { DeliveryResult } from '../delivery/result.ts';",
      "import type { ConsentState } from '../consent/state.ts';",
      "import type { Event } from '../ingest/event.ts';",
      "import { reasonText } from '../policy/reasons.ts';",
      "import { insertReceipts } from '../store/receipts.ts';",
    ].join('\n'),
  },
  {
    name: 'parsers',
    file: 'src/ingest/segment.ts',
    rule: 'parsers only parse',
    forbidden: [
      "import { createConsentResolver } from '../consent/resolve.ts';",
      "import { jsonBody } from '../http/body.ts';",
      "import { openDb } from '../store/open.ts';",
      "import { decide } from '../policy/decide.ts';",
      "import type { Pipeline } from '../pipeline/pipeline.ts';",
    ],
    allowed: ["import { z } from 'zod';", "import { createHash } from 'node:crypto';", "import type { Event } from './event.ts';", "import { FORBIDDEN_KEYS } from '../lib/dotted.ts';"].join('\n'),
  },
  {
    name: 'consent resolution',
    file: 'src/consent/upstream/probe.ts',
    rule: 'consent resolution knows no vendors',
    forbidden: [
      "import { compileMapping } from '../../destinations/mapping.ts';",
      "import { parseRetryAfter } from '../../delivery/retry-policy.ts';",
      "import { consentRouter } from '../../api/consent/mount.ts';",
    ],
    allowed: [
      "import type { Event } from '../../ingest/event.ts';",
      "import { readCookie } from '../../http/cookies.ts';",
      "import { fullJitter } from '../../lib/backoff.ts';",
      "import type { ConsentRecord } from '../../store/types.ts';",
    ].join('\n'),
  },
  {
    name: 'lib',
    file: 'src/lib/probe.ts',
    rule: 'lib is the shared kernel',
    forbidden: [
      "import type { Db } from '../store/db.ts';",
      "import { maskRequest } from '../observability/mask.ts';",
      "import { LRUCache } from 'lru-cache';",
      "import { z } from 'zod';",
    ],
    allowed: ["import { Agent } from 'undici';", "import { setTimeout } from 'node:timers';", "import { TagwardenError } from '../errors.ts';", "import type { Clock } from './clock.ts';"].join('\n'),
  },
];

describe('import boundaries (eslint.config.mjs)', () => {
  for (const part of PARTS) {
    it(`${part.name}: a forbidden import fails lint, naming the rule`, async () => {
      for (const line of part.forbidden) {
        const messages = await restricted(part.file, line);
        expect(messages, line).toHaveLength(1);
        expect(messages[0], line).toContain(part.rule);
      }
    });

    it(`${part.name}: an allowed import passes`, async () => {
      expect(await restricted(part.file, part.allowed)).toEqual([]);
    });
  }

  it('tests may import across parts', async () => {
    expect(await restricted('src/store/probe.test.ts', "import { assertWebhookUrl } from '../api/url-guard.ts';")).toEqual([]);
  });
});
