import * as check from './check.ts';
import { ErrorCode, TesseraError } from './errors.ts';
import { field, type FieldCheck, type FieldValue } from './fields.ts';

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

/** A message's fields by key: checks from fields.ts, or `object(...)` for a nested shape. */
export type MessageFields = Record<string, FieldCheck<unknown>>;

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

// ---- nested shapes --------------------------------------------------------

/** A nested object with these fields, named `parent.key` on failure; unknown keys are refused unless `unknownKeys: 'ignore'`. */
export function object<F extends MessageFields>(fields: F, options: ShapeOptions = {}): FieldCheck<ShapeOf<F>> {
  const keys = Object.keys(fields);
  return field((value, name) => readFields(check.record(value, name, options.unknownKeys === 'ignore' ? undefined : keys), fields, name));
}
