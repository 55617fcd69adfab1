import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { classifyRequestTarget, guarded, normalizeHost, type RequestTargetClass } from './host-guard.ts';

describe('classifyRequestTarget', () => {
  const table: [string, RequestTargetClass][] = [
    ['/', 'ok'],
    ['/gtag/js?id=G-ABCD1234', 'ok'],
    ['/gtag/js?id=G-1&url=http://evil/..%2f', 'ok'], // only the path is judged
    ['/en_US/fbevents.js', 'ok'],
    ['/a%20b/c', 'ok'],
    ['/v1/user@example', 'ok'], // '@' after the first segment
    ['http://evil.com/x', 'absolute'],
    ['https://evil.com/', 'absolute'],
    ['HTTP://EVIL.COM/', 'absolute'],
    ['http://0x7f.1/', 'absolute'],
    ['http://2130706433/', 'absolute'],
    ['http://0177.0.0.1/', 'absolute'],
    ['http://127.1/', 'absolute'],
    ['http://[::ffff:7f00:1]/', 'absolute'],
    ['evil.com/x', 'absolute'],
    ['*', 'absolute'],
    ['', 'absolute'],
    ['\\\\evil.com/x', 'absolute'],
    ['//evil.com/x', 'authority'],
    ['//a@b/x', 'authority'],
    ['/\\evil.com/x', 'authority'],
    ['/a@b/x', 'authority'],
    ['/a%40b/x', 'authority'],
    ['/%2e%2e/etc', 'traversal'],
    ['/%2E%2E/etc/passwd', 'traversal'],
    ['/a/%2F/b', 'traversal'],
    ['/a%2fb', 'traversal'],
    ['/..%5c..', 'traversal'],
    ['/a\\b', 'traversal'],
    ['/../etc', 'traversal'],
    ['/a/../b', 'traversal'],
    ['/a/./b', 'traversal'],
    ['/a/..', 'traversal'],
    ['/%252e%252e/x', 'traversal'], // double encoding
    ['/%zz', 'traversal'], // malformed encoding
    ['/a%00b', 'traversal'],
    // Plain paths (letters, digits, -._~/ only) are judged by their dot segments alone.
    ['/V1/TRACK/', 'ok'],
    ['/.well-known/x', 'ok'],
    ['/a..b/c.d', 'ok'],
    ['/a/.b', 'ok'],
    ['/a//b', 'ok'],
    ['/.', 'traversal'],
    ['/..', 'traversal'],
    ['/v1/track/..', 'traversal'],
    ['/tr/./', 'traversal'],
    ['//', 'authority'],
  ];
  it.each(table)('%j → %s', (url, expected) => {
    expect(classifyRequestTarget(url)).toBe(expected);
  });
});

describe('normalizeHost', () => {
  it.each([
    ['Tags.Example.com:8443', 'tags.example.com'],
    ['tags.example.com.', 'tags.example.com'],
    ['[::1]:8080', '[::1]'],
    ['127.0.0.1', '127.0.0.1'],
  ])('%s → %s', (h, n) => expect(normalizeHost(h)).toBe(n));
});

describe('guarded', () => {
  const app = (hosts: readonly string[]) =>
    guarded(hosts, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });

  it('passes a listed host, whatever its case and port', async () => {
    const res = await request(app(['tags.example.com'])).get('/ok').set('host', 'TAGS.example.com:8080');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ ok: true });
  });

  it('answers 421 JSON for a host not listed', async () => {
    const res = await request(app(['tags.example.com'])).get('/ok').set('host', 'evil.com');
    expect(res.status).toBe(421);
    expect(res.body.error.code).toBe('TW_ERR_MISDIRECTED');
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('does not match a suffix or a prefix of a listed host', async () => {
    for (const host of ['tags.example.com.evil.com', 'evil-tags.example.com', 'example.com']) {
      const res = await request(app(['tags.example.com'])).get('/ok').set('host', host);
      expect(res.status).toBe(421);
    }
  });

  it('passes any host when the list is empty', async () => {
    const res = await request(app([])).get('/ok').set('host', 'anything.test');
    expect(res.status).toBe(200);
  });

  it('answers 400 JSON for a traversing path before looking at the host', async () => {
    const res = await request(app(['tags.example.com'])).get('/a/%2e%2e/ok').set('host', 'evil.com');
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('TW_ERR_VALIDATION');
  });
});

describe('guarded: paths served whatever the Host', () => {
  const app = guarded(
    ['tags.example.com'],
    (_req, res) => {
      res.writeHead(200);
      res.end('ok');
    },
    ['/healthz'],
  );

  it('serves a probe path to any Host, as Express matches it (case, trailing slash, query)', async () => {
    for (const path of ['/healthz', '/HealthZ/', '/healthz?full=1']) {
      expect((await request(app).get(path).set('host', '10.0.0.7:8080')).status).toBe(200);
    }
  });

  it('still refuses other paths, and a probe path that traverses', async () => {
    expect((await request(app).get('/healthzz').set('host', '10.0.0.7')).status).toBe(421);
    expect((await request(app).get('/x/../healthz').set('host', '10.0.0.7')).status).toBe(400);
  });
});
