import { describe, expect, it } from 'vitest';
import { statement } from './postgres.ts';

describe('statement: prepared once per connection where that is safe', () => {
  it('names a single statement with parameters, by its text, with $n placeholders', () => {
    const a = statement('SELECT status FROM consent_items WHERE site_id = ? AND item = ?', ['s', 'i']);
    const b = statement('SELECT status FROM consent_items WHERE site_id = ? AND item = ?', ['t', 'j']);
    expect(a.name).toMatch(/^tw_[0-9a-f]{24}$/);
    expect(b.name).toBe(a.name);
    expect(a.text).toBe('SELECT status FROM consent_items WHERE site_id = $1 AND item = $2');
    expect(b.values).toEqual(['t', 'j']);
    expect(statement('SELECT status FROM consent_items WHERE site_id = ?', ['s']).name).not.toBe(a.name);
  });

  it('leaves scripts of several statements, statements without parameters and bulk statements unnamed', () => {
    expect(statement('CREATE TABLE a (x int); CREATE TABLE b (y int)', []).name).toBeUndefined();
    expect(statement('SELECT 1', []).name).toBeUndefined();
    expect(statement('DELETE FROM a WHERE x = ?; DELETE FROM b WHERE y = ?', [1, 2]).name).toBeUndefined();
    const many = Array.from({ length: 65 }, (_, i) => i);
    expect(statement(`SELECT x FROM a WHERE x IN (${many.map(() => '?').join(', ')})`, many).name).toBeUndefined();
  });
});
