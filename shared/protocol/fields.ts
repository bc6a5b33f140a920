import * as check from './check.ts';
import { invalid } from './errors.ts';

/*
 * The checks a declared shape is made of, shared by messages
 * (message-schema.ts) and configs (schema.ts): a message field is a check, a
 * config field is a check with a default. Each names the field on failure
 * (check.ts) and, where configs need it, says what it accepts as JSON Schema.
 */

/** A JSON Schema object (draft 2020-12, as OpenAPI 3.1 uses). */
export type JsonSchema = Record<string, unknown>;

export interface JsonSchemaOptions {
  /** Describe a resolved config (every key present), not the partial one a caller sends. */
  resolved: boolean;
  /** Leave the defaults out (when they depend on something else, such as the model family); default true. */
  defaults?: boolean;
}

/** How one field is read: a checker that names the field on failure, and the values it accepts as JSON Schema (absent: any value). */
export interface FieldCheck<T> {
  parse(value: unknown, field: string): T;
  jsonSchema?(options: JsonSchemaOptions): JsonSchema;
}

/** A field that may be absent: its parse gives undefined then, and its key is `?:` in a message's type. */
export interface OptionalField<T> extends FieldCheck<T | undefined> {
  optional: true;
}

/** The value a field gives. */
export type FieldValue<F> = F extends FieldCheck<infer T> ? T : never;

/** A field read by `parse` (a checker from check.ts, or one of its own). */
export const field = <T>(parse: (value: unknown, field: string) => T): FieldCheck<T> => ({ parse });

/** A string of at most `maxLength` characters. */
export const str = (maxLength = 256): FieldCheck<string> => ({
  parse: (value, name) => check.string(value, name, maxLength),
  jsonSchema: () => ({ type: 'string', maxLength }),
});

/** An integer in [min, max]. */
export const int = (min = 0, max = Number.MAX_SAFE_INTEGER): FieldCheck<number> => ({
  parse: (value, name) => check.integer(value, name, min, max),
  jsonSchema: () => ({ type: 'integer', minimum: min, maximum: max }),
});

/** A finite number in [min, max]. */
export const num = (min = -Infinity, max = Infinity): FieldCheck<number> => ({
  parse: (value, name) => check.finiteNumber(value, name, min, max),
  jsonSchema: () => ({ type: 'number', minimum: min, maximum: max }),
});

/** true or false. */
export const bool = (): FieldCheck<boolean> => ({ parse: (value, name) => check.boolean(value, name), jsonSchema: () => ({ type: 'boolean' }) });

/** One of a fixed set of strings. */
export const oneOf = <const T extends string>(options: readonly T[]): FieldCheck<T> => ({
  parse: (value, name) => check.oneOf(value, name, options),
  jsonSchema: () => ({ type: 'string', enum: [...options] }),
});

/** Bytes (a Uint8Array) of at most `maxBytes`; more is TOO_LARGE. */
export const bytes = (maxBytes: number): FieldCheck<Uint8Array> => field((value, name) => check.bytes(value, name, maxBytes));

/** A list of at most `maxLength` integers in [min, max]; more entries are TOO_LARGE. */
export const intArray = (maxLength: number, min = 0, max = Number.MAX_SAFE_INTEGER): FieldCheck<number[]> =>
  field((value, name) => check.integerArray(value, name, maxLength, min, max));

/** An object of finite numbers by name (losses), at most `maxKeys` of them. */
export const numberRecord = (maxKeys = 32): FieldCheck<Record<string, number>> => field((value, name) => check.numberRecord(value, name, maxKeys));

/** A list of at most `maxLength` entries, which are not checked (from a trusted peer). */
export const list = <T>(maxLength: number): FieldCheck<T[]> =>
  field((value, name) => {
    if (!Array.isArray(value) || value.length > maxLength) invalid(name, `a list of up to ${maxLength} entries`, value);
    return value as T[];
  });

/**
 * A field that may be absent (undefined; null too with `nullIsAbsent`, as
 * check.optionalString reads strings): absent, it is left out of the message.
 */
export function optional<T>(inner: FieldCheck<T>, options: { nullIsAbsent?: boolean } = {}): OptionalField<T> {
  return {
    optional: true,
    parse: (value, name) => (value === undefined || (options.nullIsAbsent && value === null) ? undefined : inner.parse(value, name)),
  };
}

/** A field that reads as `defaultValue` when absent (undefined or null). */
export const withDefault = <T>(inner: FieldCheck<T>, defaultValue: T): FieldCheck<T> => field((value, name) => inner.parse(value ?? defaultValue, name));

/**
 * A field taken as it comes, unchecked: for a message from a trusted peer
 * (the coordinator), whose fields a worker does not act on before using them.
 */
export const trusted = <T>(): FieldCheck<T> => field((value) => value as T);
