import { describe, expect, it } from 'vitest';
import { ErrorCode, TesseraError } from '../protocol/errors.ts';
import { mean } from './mean.ts';
import { getRule, listRules, registerRule } from './registry.ts';
import type { AggregationRule } from './types.ts';

const fake = (id: string): AggregationRule => ({ id, description: 'a test rule', aggregate: mean.aggregate });

describe('aggregation rule registry', () => {
  it('finds a registered rule by its id and lists it in order', () => {
    const a = fake('test-a');
    const b = fake('test-b');
    registerRule(a);
    registerRule(b);
    expect(getRule('test-a')).toBe(a);
    const ids = listRules().map((rule) => rule.id);
    expect(ids.indexOf('test-a')).toBeLessThan(ids.indexOf('test-b'));
  });

  it('throws on a duplicate id and keeps the first rule', () => {
    const first = fake('test-dup');
    registerRule(first);
    expect(() => registerRule(fake('test-dup'))).toThrow(/already registered/);
    expect(getRule('test-dup')).toBe(first);
  });

  it('refuses an empty id', () => {
    expect(() => registerRule(fake(''))).toThrow(TesseraError);
  });

  it.each([['nope'], [''], [undefined], [42], ['__proto__'], ['constructor']])('gives InvalidConfig naming the field and the known ids for %s', (id) => {
    registerRule(fake(`test-known-${String(id)}`));
    let caught: unknown;
    try {
      getRule(id, 'training.aggregator.generator');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(TesseraError);
    expect((caught as TesseraError).code).toBe(ErrorCode.InvalidConfig);
    expect((caught as TesseraError).field).toBe('training.aggregator.generator');
    expect((caught as TesseraError).message).toContain(`test-known-${String(id)}`);
  });

  it('has mean, trimmed-mean, median and centered-clip once the index is imported', async () => {
    const index = await import('./index.ts');
    expect(['mean', 'trimmed-mean', 'median', 'centered-clip'].map((id) => index.getRule(id).id)).toEqual(['mean', 'trimmed-mean', 'median', 'centered-clip']);
  });
});
