import * as check from './check.ts';
import { ErrorCode, TesseraError, describe } from './errors.ts';
import { bool, int, num, oneOf, str, type FieldCheck, type JsonSchema, type JsonSchemaOptions } from './fields.ts';

export type { JsonSchema, JsonSchemaOptions } from './fields.ts';

/** How one config key is read: a check (fields.ts, as messages use) and the default that fills it when absent. */
export interface Field<T> extends FieldCheck<T> {
  default: T;
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
        throw new TesseraError(ErrorCode.InvalidConfig, error.detail, { field: error.field, cause: error });
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

/** A config field: `check` read as given, `defaultValue` when absent, and that default in its JSON Schema. */
function withConfigDefault<T>(check: FieldCheck<T>, defaultValue: T): Field<T> {
  const { jsonSchema } = check;
  return {
    default: defaultValue,
    parse: check.parse,
    ...(jsonSchema ? { jsonSchema: (options: JsonSchemaOptions) => ({ ...jsonSchema(options), default: defaultValue }) } : {}),
  };
}

/** Schema fields for the common cases: the checks messages use (fields.ts), each with its default. */
export const fields = {
  integer: (defaultValue: number, min: number, max: number): Field<number> => withConfigDefault(int(min, max), defaultValue),
  number: (defaultValue: number, min: number, max: number): Field<number> => withConfigDefault(num(min, max), defaultValue),
  boolean: (defaultValue: boolean): Field<boolean> => withConfigDefault(bool(), defaultValue),
  string: (defaultValue: string, maxLength = 256): Field<string> => withConfigDefault(str(maxLength), defaultValue),
  oneOf: <T extends string>(defaultValue: T, options: readonly T[]): Field<T> => withConfigDefault(oneOf(options), defaultValue),
  nested: <T>(schema: Schema<T>): Field<T> => ({
    default: parseConfig(schema, {}),
    parse: (value, field) => parseConfig(schema, value, field),
    jsonSchema: (options) => jsonSchemaOf(schema, options),
  }),
};
