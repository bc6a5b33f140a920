import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';

/*
 * Refusing secrets that were never made: the coordinator and the Node worker
 * check every token and password they are given at start.
 */

/** How to make a real secret, in every refusal: 32 random bytes as hex. */
export const MAKE_SECRET = 'openssl rand -hex 32';

/** Shorter than this, a token can be guessed or was typed by hand; `openssl rand -hex 32` gives 64. */
const MIN_SECRET_LENGTH = 12;

/**
 * Marks of a value copied from an example rather than made: deploy/env.example
 * and k8s/base/secrets/ ship `REPLACE-ME…` so that they render, and must not
 * start a working cluster.
 */
const PLACEHOLDER = /replace|change-?me|example|placeholder|<.*>/i;

/** Values people type when asked for a password. */
const WEAK = new Set(['secret', 'password', 'passw0rd', 'admin', 'token', 'tessera', 'changeme', 'default', 'test', '123456', 'letmein', 'qwerty']);

/**
 * Why a secret must not be used, or undefined when it may: empty, a
 * placeholder from the project's examples, a well-known weak value, or too
 * short.
 */
export function secretProblem(value: string): string | undefined {
  const trimmed = value.trim();
  if (trimmed === '') return 'is empty';
  if (PLACEHOLDER.test(trimmed)) return 'is a placeholder from an example file';
  if (WEAK.has(trimmed.toLowerCase().replace(/^tessera-/, ''))) return 'is a well-known example value';
  if (trimmed.length < MIN_SECRET_LENGTH) return `is shorter than ${MIN_SECRET_LENGTH} characters`;
  return undefined;
}

/**
 * Refuses a placeholder or weak secret with a message that says how to make a
 * real one. `name` is the setting as the user sets it (an env variable).
 */
export function requireRealSecret(name: string, value: string | undefined): void {
  if (value === undefined) return;
  const problem = secretProblem(value);
  if (problem) {
    throw new TesseraError(ErrorCode.InvalidConfig, `${name} ${problem}; make a real one with \`${MAKE_SECRET}\` (deploy/README.md, k8s/README.md)`, {
      field: name,
    });
  }
}
