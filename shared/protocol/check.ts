import { ErrorCode, invalid } from './errors.ts';

/**
 * Field checkers for validation at the door. Each takes the value and the
 * dotted path of the field, and throws a TesseraError naming that field, the
 * expected and the actual value.
 */

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value);
}

/** A plain object, with no keys outside `allowed` when it is given. */
export function record(value: unknown, field: string, allowed?: readonly string[]): Record<string, unknown> {
  if (!isRecord(value)) invalid(field, 'an object', value);
  if (allowed) {
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key)) invalid(field ? `${field}.${key}` : key, `one of the keys ${allowed.join(', ')}`, 'an unknown key');
    }
  }
  return value;
}

export function string(value: unknown, field: string, maxLength = 256): string {
  if (typeof value !== 'string') invalid(field, 'a string', value);
  if (value.length > maxLength) invalid(field, `a string of at most ${maxLength} characters`, `${value.length} characters`);
  return value;
}

export function optionalString(value: unknown, field: string, maxLength = 256): string | undefined {
  return value === undefined || value === null ? undefined : string(value, field, maxLength);
}

export function oneOf<T extends string>(value: unknown, field: string, options: readonly T[]): T {
  if (typeof value !== 'string' || !options.includes(value as T)) invalid(field, `one of ${options.join(', ')}`, value);
  return value as T;
}

export function finiteNumber(value: unknown, field: string, min = -Infinity, max = Infinity): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) invalid(field, 'a finite number', value);
  if (value < min || value > max) invalid(field, `a number in [${min}, ${max}]`, value);
  return value;
}

export function integer(value: unknown, field: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) invalid(field, 'an integer', value);
  if (value < min || value > max) invalid(field, `an integer in [${min}, ${max}]`, value);
  return value;
}

export function boolean(value: unknown, field: string): boolean {
  if (typeof value !== 'boolean') invalid(field, 'a boolean', value);
  return value;
}

export function bytes(value: unknown, field: string, maxBytes: number): Uint8Array {
  if (!(value instanceof Uint8Array)) invalid(field, 'bytes', value);
  if (value.byteLength > maxBytes) invalid(field, `at most ${maxBytes} bytes`, `${value.byteLength} bytes`, ErrorCode.TooLarge);
  return value;
}

export function integerArray(value: unknown, field: string, maxLength: number, min = 0, max = Number.MAX_SAFE_INTEGER): number[] {
  if (!Array.isArray(value)) invalid(field, 'an array of integers', value);
  if (value.length > maxLength) invalid(field, `at most ${maxLength} entries`, `${value.length} entries`, ErrorCode.TooLarge);
  for (let i = 0; i < value.length; i++) integer(value[i], `${field}[${i}]`, min, max);
  return value as number[];
}

/** A record of finite numbers, such as losses by name. */
export function numberRecord(value: unknown, field: string, maxKeys = 32): Record<string, number> {
  const object = record(value, field);
  const keys = Object.keys(object);
  if (keys.length > maxKeys) invalid(field, `at most ${maxKeys} keys`, `${keys.length} keys`);
  for (const key of keys) finiteNumber(object[key], `${field}.${key}`);
  return object as Record<string, number>;
}
