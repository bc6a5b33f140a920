import * as check from './check.ts';
import { ErrorCode, TesseraError, invalid } from './errors.ts';

/*
 * Messages declared once. A declaration names the message's type and its
 * fields; from it come the TypeScript type (MessageOf), the parser that
 * validates it at the door (refusing unknown keys and bad values with a
 * TesseraError naming the field) and the list of its keys.
 *
 *   const fetchWeights = message('fetchWeights', { hash: str(128) });
 *   export type FetchWeights = MessageOf<typeof fetchWeights>;   // { type: 'fetchWeights'; hash: string }
 *   fetchWeights.parse(value); fetchWeights.keys;                 // ['type', 'hash']
 *
 * Fields are checked in the order they are declared, after the keys: the
 * first bad one is the one named.
 */

/** How one field of a message is read: a checker that names the field on failure. `optional` makes it `?:` in the type. */
export interface MessageField<T> {
  parse(value: unknown, field: string): T;
  optional?: true;
}

/** A field that may be absent: its parse gives undefined then, and its key is `?:` in the type. */
export interface OptionalField<T> extends MessageField<T | undefined> {
  optional: true;
}

export type MessageFields = Record<string, MessageField<unknown>>;

/** The value a field gives. */
export type FieldValue<F> = F extends MessageField<infer T> ? T : never;

type Simplify<T> = { [K in keyof T]: T[K] } & {};
type OptionalKeys<F extends MessageFields> = { [K in keyof F]: F[K] extends { optional: true } ? K : never }[keyof F];

/** The object a set of fields describes: required fields as they parse, optional ones as `?:`. */
export type ShapeOf<F extends MessageFields> = Simplify<
  { [K in Exclude<keyof F, OptionalKeys<F>>]: FieldValue<F[K]> } & { [K in OptionalKeys<F>]?: Exclude<FieldValue<F[K]>, undefined> }
>;

/** What to do with a key no field declares: refuse it (at the door), or drop it (from a trusted peer). */
export interface ShapeOptions {
  unknownKeys?: 'refuse' | 'ignore';
}

/** A declared message: its type, its fields, its keys ('type' first) and its parser. */
export interface MessageSchema<Type extends string, F extends MessageFields> {
  readonly type: Type;
  readonly fields: F;
  readonly keys: readonly string[];
  parse(value: unknown): Simplify<{ type: Type } & ShapeOf<F>>;
}

/** The type of a declared message (or of a union of them): `{ type: ...; ...fields }`. */
export type MessageOf<M> = M extends MessageSchema<infer Type, infer F> ? Simplify<{ type: Type } & ShapeOf<F>> : never;

const at = (path: string, key: string) => (path ? `${path}.${key}` : key);

/** Reads `fields` from `value` (already known to be an object): each field's parse in declared order; absent optional fields left out. */
function readFields<F extends MessageFields>(value: Record<string, unknown>, fields: F, path: string): ShapeOf<F> {
  const result: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(fields)) {
    const parsed = field.parse(value[key], at(path, key));
    if (parsed !== undefined) result[key] = parsed;
  }
  return result as ShapeOf<F>;
}

/** Declares a message: `type` and its fields. Unknown keys are refused unless `unknownKeys: 'ignore'`. */
export function message<const Type extends string, F extends MessageFields>(type: Type, fields: F, options: ShapeOptions = {}): MessageSchema<Type, F> {
  const keys = ['type', ...Object.keys(fields)];
  return {
    type,
    fields,
    keys,
    parse(value) {
      const input = check.record(value, '');
      if (input.type !== type) throw unknownType(input.type);
      if (options.unknownKeys !== 'ignore') check.record(input, '', keys);
      return { type, ...readFields(input, fields, '') } as Simplify<{ type: Type } & ShapeOf<F>>;
    },
  };
}

function unknownType(type: unknown): TesseraError {
  return new TesseraError(ErrorCode.UnknownMessageType, `unknown message type ${JSON.stringify(String(type)).slice(0, 60)}`, { field: 'type' });
}

/**
 * A parser for any of `messages`, dispatching on `type`: a value that is not
 * an object is INVALID_MESSAGE, a type not among them UNKNOWN_MESSAGE_TYPE
 * (field `type`), and the rest is the declaration's parse.
 */
export function messageParser<const M extends readonly MessageSchema<string, any>[]>(messages: M): (value: unknown) => MessageOf<M[number]> {
  const byType = new Map<string, M[number]>(messages.map((declared) => [declared.type, declared]));
  return (value) => {
    const type = check.record(value, '').type;
    const declared = typeof type === 'string' ? byType.get(type) : undefined;
    if (!declared) throw unknownType(type);
    return declared.parse(value) as MessageOf<M[number]>;
  };
}

// ---- fields -----------------------------------------------------------------

/** A field read by `parse` (a checker from check.ts, or one of its own). */
export const field = <T>(parse: (value: unknown, field: string) => T): MessageField<T> => ({ parse });

/** A string of at most `maxLength` characters. */
export const str = (maxLength = 256): MessageField<string> => field((value, name) => check.string(value, name, maxLength));

/** An integer in [min, max]. */
export const int = (min = 0, max = Number.MAX_SAFE_INTEGER): MessageField<number> => field((value, name) => check.integer(value, name, min, max));

/** A finite number in [min, max]. */
export const num = (min = -Infinity, max = Infinity): MessageField<number> => field((value, name) => check.finiteNumber(value, name, min, max));

/** One of a fixed set of strings. */
export const oneOf = <const T extends string>(options: readonly T[]): MessageField<T> => field((value, name) => check.oneOf(value, name, options));

/** Bytes (a Uint8Array) of at most `maxBytes`; more is TOO_LARGE. */
export const bytes = (maxBytes: number): MessageField<Uint8Array> => field((value, name) => check.bytes(value, name, maxBytes));

/** A list of at most `maxLength` integers in [min, max]; more entries are TOO_LARGE. */
export const intArray = (maxLength: number, min = 0, max = Number.MAX_SAFE_INTEGER): MessageField<number[]> =>
  field((value, name) => check.integerArray(value, name, maxLength, min, max));

/** An object of finite numbers by name (losses), at most `maxKeys` of them. */
export const numberRecord = (maxKeys = 32): MessageField<Record<string, number>> => field((value, name) => check.numberRecord(value, name, maxKeys));

/** A list of at most `maxLength` entries, which are not checked (from a trusted peer). */
export const list = <T>(maxLength: number): MessageField<T[]> =>
  field((value, name) => {
    if (!Array.isArray(value) || value.length > maxLength) invalid(name, `a list of up to ${maxLength} entries`, value);
    return value as T[];
  });

/** A nested object with these fields, named `parent.key` on failure; unknown keys are refused unless `unknownKeys: 'ignore'`. */
export function object<F extends MessageFields>(fields: F, options: ShapeOptions = {}): MessageField<ShapeOf<F>> {
  const keys = Object.keys(fields);
  return field((value, name) => readFields(check.record(value, name, options.unknownKeys === 'ignore' ? undefined : keys), fields, name));
}

/**
 * A field that may be absent (undefined; null too with `nullIsAbsent`, as
 * check.optionalString reads strings): absent, it is left out of the message.
 */
export function optional<T>(inner: MessageField<T>, options: { nullIsAbsent?: boolean } = {}): OptionalField<T> {
  return {
    optional: true,
    parse: (value, name) => (value === undefined || (options.nullIsAbsent && value === null) ? undefined : inner.parse(value, name)),
  };
}

/** A field that reads as `defaultValue` when absent (undefined or null). */
export const withDefault = <T>(inner: MessageField<T>, defaultValue: T): MessageField<T> => field((value, name) => inner.parse(value ?? defaultValue, name));

/**
 * A field taken as it comes, unchecked: for a message from a trusted peer
 * (the coordinator), whose fields a worker does not act on before using them.
 */
export const trusted = <T>(): MessageField<T> => field((value) => value as T);
