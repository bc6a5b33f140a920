import * as check from './check.ts';
import { ErrorCode, TesseraError, describe } from './errors.ts';

/** How one config key is read: its default and a checker that names the field on failure. */
export interface Field<T> {
  default: T;
  parse(value: unknown, field: string): T;
  /** The values parse accepts, as JSON Schema (for the API's description); absent: any value. */
  jsonSchema?(options: JsonSchemaOptions): JsonSchema;
}

/** A JSON Schema object (draft 2020-12, as OpenAPI 3.1 uses). */
export type JsonSchema = Record<string, unknown>;

export interface JsonSchemaOptions {
  /** Describe a resolved config (every key present), not the partial one a caller sends. */
  resolved: boolean;
  /** Leave the defaults out (when they depend on something else, such as the model family); default true. */
  defaults?: boolean;
}

export type Schema<Config> = { [K in keyof Config]: Field<Config[K]> };

/**
 * Reads a partial config against a schema: defaults fill what is absent,
 * unknown keys are errors (a typo must not silently fall back to a default).
 */
export function parseConfig<Config>(schema: Schema<Config>, raw: unknown, field = ''): Config {
  const at = (key: string) => (field ? `${field}.${key}` : key);
  const input = raw === undefined ? {} : raw;
  if (!check.isRecord(input)) throw new TesseraError(ErrorCode.InvalidConfig, `expected an object, got ${describe(input)}`, { field: field || 'config' });
  for (const key of Object.keys(input)) {
    if (!(key in schema)) {
      throw new TesseraError(ErrorCode.InvalidConfig, `unknown key; known keys: ${Object.keys(schema).join(', ')}`, { field: at(key) });
    }
  }
  const result = {} as Config;
  for (const key of Object.keys(schema) as (keyof Config & string)[]) {
    const spec = schema[key];
    const value = input[key];
    try {
      result[key] = value === undefined ? structuredClone(spec.default) : spec.parse(value, at(key));
    } catch (error) {
      if (error instanceof TesseraError && error.code === ErrorCode.InvalidMessage) {
        throw new TesseraError(ErrorCode.InvalidConfig, error.message.replace(/ \(field: .*\)$/, ''), { field: error.field, cause: error });
      }
      throw error;
    }
  }
  return result;
}

/**
 * A schema as JSON Schema, derived from the same fields that parse: an object
 * with exactly the schema's keys, each with its type, range and default. A
 * partial config requires none (defaults fill them); a resolved one has all.
 */
export function jsonSchemaOf<Config>(schema: Schema<Config>, options: JsonSchemaOptions): JsonSchema {
  const entries = Object.entries<Field<unknown>>(schema);
  return {
    type: 'object',
    additionalProperties: false,
    properties: Object.fromEntries(entries.map(([key, field]) => [key, withoutDefault(field.jsonSchema?.(options) ?? {}, options.defaults === false)])),
    ...(options.resolved ? { required: entries.map(([key]) => key) } : {}),
  };
}

function withoutDefault(schema: JsonSchema, drop: boolean): JsonSchema {
  if (!drop) return schema;
  const { default: _default, ...rest } = schema;
  return rest;
}

/** Schema fields for the common cases. */
export const fields = {
  integer: (defaultValue: number, min: number, max: number): Field<number> => ({
    default: defaultValue,
    parse: (value, field) => check.integer(value, field, min, max),
    jsonSchema: () => ({ type: 'integer', minimum: min, maximum: max, default: defaultValue }),
  }),
  number: (defaultValue: number, min: number, max: number): Field<number> => ({
    default: defaultValue,
    parse: (value, field) => check.finiteNumber(value, field, min, max),
    jsonSchema: () => ({ type: 'number', minimum: min, maximum: max, default: defaultValue }),
  }),
  boolean: (defaultValue: boolean): Field<boolean> => ({
    default: defaultValue,
    parse: (value, field) => check.boolean(value, field),
    jsonSchema: () => ({ type: 'boolean', default: defaultValue }),
  }),
  string: (defaultValue: string, maxLength = 256): Field<string> => ({
    default: defaultValue,
    parse: (value, field) => check.string(value, field, maxLength),
    jsonSchema: () => ({ type: 'string', maxLength, default: defaultValue }),
  }),
  oneOf: <T extends string>(defaultValue: T, options: readonly T[]): Field<T> => ({
    default: defaultValue,
    parse: (value, field) => check.oneOf(value, field, options),
    jsonSchema: () => ({ type: 'string', enum: [...options], default: defaultValue }),
  }),
  nested: <T>(schema: Schema<T>): Field<T> => ({
    default: parseConfig(schema, {}),
    parse: (value, field) => parseConfig(schema, value, field),
    jsonSchema: (options) => jsonSchemaOf(schema, options),
  }),
};
