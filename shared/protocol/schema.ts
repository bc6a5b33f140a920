import * as check from './check.ts';
import { ErrorCode, TesseraError, describe } from './errors.ts';

/** How one config key is read: its default and a checker that names the field on failure. */
export interface Field<T> {
  default: T;
  parse(value: unknown, field: string): T;
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

/** Schema fields for the common cases. */
export const fields = {
  integer: (defaultValue: number, min: number, max: number): Field<number> => ({
    default: defaultValue,
    parse: (value, field) => check.integer(value, field, min, max),
  }),
  number: (defaultValue: number, min: number, max: number): Field<number> => ({
    default: defaultValue,
    parse: (value, field) => check.finiteNumber(value, field, min, max),
  }),
  boolean: (defaultValue: boolean): Field<boolean> => ({
    default: defaultValue,
    parse: (value, field) => check.boolean(value, field),
  }),
  string: (defaultValue: string, maxLength = 256): Field<string> => ({
    default: defaultValue,
    parse: (value, field) => check.string(value, field, maxLength),
  }),
  oneOf: <T extends string>(defaultValue: T, options: readonly T[]): Field<T> => ({
    default: defaultValue,
    parse: (value, field) => check.oneOf(value, field, options),
  }),
  nested: <T>(schema: Schema<T>): Field<T> => ({
    default: parseConfig(schema, {}),
    parse: (value, field) => parseConfig(schema, value, field),
  }),
};
