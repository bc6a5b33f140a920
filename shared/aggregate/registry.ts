import { ErrorCode, TesseraError, describe } from '../protocol/errors.ts';
import type { AggregationRule } from './types.ts';

// Keyed by the id a job config names in training.aggregator.
const rules = new Map<string, AggregationRule>();

/** Adds a rule; a second rule with the same id would make the config ambiguous, so it throws. */
export function registerRule(rule: AggregationRule): void {
  if (typeof rule?.id !== 'string' || rule.id.length === 0) {
    throw new TesseraError(ErrorCode.Internal, `aggregation rule id must be a non-empty string, got ${describe(rule?.id)}`);
  }
  if (rules.has(rule.id)) {
    throw new TesseraError(ErrorCode.Internal, `an aggregation rule with id ${JSON.stringify(rule.id)} is already registered`);
  }
  rules.set(rule.id, rule);
}

/** The rule for a config id; an unknown (or non-string) id is InvalidConfig on `field`, listing the known ids. */
export function getRule(id: unknown, field = 'training.aggregator'): AggregationRule {
  const rule = typeof id === 'string' ? rules.get(id) : undefined;
  if (!rule) {
    throw new TesseraError(ErrorCode.InvalidConfig, `unknown aggregation rule ${describe(id)}; known: ${[...rules.keys()].join(', ') || 'none'}`, { field });
  }
  return rule;
}

/** Every registered rule, in registration order. */
export function listRules(): AggregationRule[] {
  return [...rules.values()];
}
