import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { closeServer } from '../helpers.ts';

/** Debian's chromium package; `.ci/run` installs it where it is missing. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/**
 * Why the browser tests cannot run here, or undefined when they can. Printed at collection, because
 * vitest's default reporter does not show the titles of skipped suites.
 */
export function chromiumMissing(): string | undefined {
  return existsSync(CHROMIUM_PATH)
    ? undefined
    : `browser tests skipped: no chromium at ${CHROMIUM_PATH} (apt-get install chromium; .ci/run installs it when it runs as root)`;
}

/**
 * Chromium that can reach 127.0.0.1 only: every other request goes to a dead-end proxy on
 * 127.0.0.1 that refuses it (Chromium's own background requests too, which happen even with
 * --disable-background-networking). Chromium never sends loopback traffic through a proxy
 * (https://chromium.googlesource.com/chromium/src/+/HEAD/net/docs/proxy.md#implicit-bypass-rules),
 * so the servers under test get exactly what the browser sends. Blocking with Playwright's
 * `route()` instead would switch on request interception, and Playwright then answers CORS
 * preflights itself, allowing everything: Tagwarden's own CORS answers would go untested.
 */
export async function launchLocalOnly(): Promise<{ browser: Browser; close: () => Promise<void> }> {
  const deadEnd = createServer((_req, res) => {
    res.writeHead(403).end();
  });
  deadEnd.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
  });
  deadEnd.listen(0, '127.0.0.1');
  await once(deadEnd, 'listening');
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-background-networking',
      '--disable-component-update',
      `--proxy-server=http://127.0.0.1:${(deadEnd.address() as AddressInfo).port}`,
    ],
    timeout: 10_000,
  });
  return {
    browser,
    close: async () => {
      await browser.close();
      await closeServer(deadEnd);
    },
  };
}

/**
 * A fresh context (its own storage, so a new visitor with a new anonymousId) whose pages' requests
 * to anything but 127.0.0.1 are listed in `escaped` (the proxy refuses them): a test expects it
 * to stay empty.
 */
export async function localContext(browser: Browser, escaped: string[]): Promise<BrowserContext> {
  const context = await browser.newContext();
  // Every wait in a browser test has a deadline well inside the test's own timeout.
  context.setDefaultTimeout(8000);
  context.on('request', (r) => {
    if (new URL(r.url()).hostname !== '127.0.0.1') escaped.push(`${r.method()} ${r.url()}`);
  });
  return context;
}
