import { describe, expect, test } from 'vitest';
import { compileMapping } from '../compile.ts';
import { event, issues, run } from '../test-helpers.ts';

describe('@template', () => {
  const settings = { pixelId: '12 34', token: 'a/b' };
  test.each([
    ['https://x.example/{{settings.pixelId}}/events', 'https://x.example/12%2034/events'],
    ['{{ settings.token }}:{{$.messageId}}', 'a%2Fb:m1'],
    ['n={{$.properties.zero}} b={{$.properties.no}}', 'n=0 b=false'],
    ['no placeholders', 'no placeholders'],
  ])('%s', (text, expected) => {
    expect(run({ '@template': text }, event, settings)).toBe(expected);
  });

  test('encode: false inserts values as they are', () => {
    expect(run({ '@template': { text: 'Bearer {{settings.token}}', encode: false } }, event, settings)).toBe('Bearer a/b');
  });

  test('any absent or non-scalar placeholder makes the whole template absent', () => {
    expect(run({ '@template': 'x/{{$.properties.missing}}' }, event)).toBeUndefined();
    expect(run({ '@template': 'x/{{$.properties.a}}' }, event)).toBeUndefined();
  });

  test.each([
    ['{{settings.nope}}', /undeclared setting/],
    ['{{event}}', /must be settings.<name>, template.apiVersion or a \$ path/],
    ['{{template.apiVersion}}', /declares no apiVersion/],
    ['a {{ b', /unbalanced/],
    ['a }} b', /unbalanced/],
    ['{{$.__proto__}}', /not allowed/],
  ])('%s is a compile error', (text, message) => {
    expect(issues({ '@template': text }, ['pixelId'])[0]?.message).toMatch(message);
  });
});

describe('@template {{template.apiVersion}}', () => {
  test('reads the version template.json declares, so a URL never spells it again', () => {
    const compiled = compileMapping({ '@template': 'https://graph.facebook.com/{{template.apiVersion}}/{{settings.pixelId}}/events' }, { settings: ['pixelId'], template: { apiVersion: 'v26.0' } });
    expect(compiled.issues).toEqual([]);
    expect(compiled.readsEvent).toBe(false);
    expect(compiled.evaluate({}, { pixelId: '123' })).toBe('https://graph.facebook.com/v26.0/123/events');
  });
});
