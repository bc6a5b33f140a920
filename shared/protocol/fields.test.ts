import { describe, expect, it } from 'vitest';
import { ErrorCode, TesseraError } from './errors.ts';
import { int, num, oneOf, str } from './fields.ts';
import { message } from './message-schema.ts';
import { fields, parseConfig } from './schema.ts';

/** What `read` throws, as code, field and message. */
function thrown(read: () => unknown): { code: ErrorCode; field: string | undefined; message: string } {
  try {
    read();
  } catch (error) {
    expect(error).toBeInstanceOf(TesseraError);
    const { code, field, message } = error as TesseraError;
    return { code, field, message };
  }
  throw new Error('expected a refusal');
}

describe('one set of checks for messages and configs', () => {
  it('a config field is the message check plus its default, in its JSON Schema too', () => {
    const resolved = { resolved: true };
    expect(fields.integer(5, 1, 9).jsonSchema!(resolved)).toStrictEqual({ ...int(1, 9).jsonSchema!(resolved), default: 5 });
    expect(fields.integer(5, 1, 9).jsonSchema!(resolved)).toStrictEqual({ type: 'integer', minimum: 1, maximum: 9, default: 5 });
    expect(fields.number(0.5, 0, 1).jsonSchema!(resolved)).toStrictEqual({ type: 'number', minimum: 0, maximum: 1, default: 0.5 });
    expect(fields.string('x', 8).jsonSchema!(resolved)).toStrictEqual({ type: 'string', maxLength: 8, default: 'x' });
    expect(fields.oneOf('a', ['a', 'b']).jsonSchema!(resolved)).toStrictEqual({ type: 'string', enum: ['a', 'b'], default: 'a' });
    expect(fields.boolean(true).jsonSchema!(resolved)).toStrictEqual({ type: 'boolean', default: true });
  });

  it('refuses a bad value with the same words in a message (INVALID_MESSAGE) and a config (INVALID_CONFIG), naming the field', () => {
    const probe = message('probe', { size: int(1, 9), rate: num(0, 1), mode: oneOf(['a', 'b']), id: str(4) });
    const schema = { size: fields.integer(5, 1, 9), rate: fields.number(0.5, 0, 1), mode: fields.oneOf('a', ['a', 'b']), id: fields.string('', 4) };
    const good = { size: 5, rate: 0.5, mode: 'a', id: 'x' };
    for (const [key, bad] of [
      ['size', 10],
      ['rate', Number.NaN],
      ['mode', 'c'],
      ['id', 'xxxxx'],
    ] as const) {
      const inMessage = thrown(() => probe.parse({ type: 'probe', ...good, [key]: bad }));
      const inConfig = thrown(() => parseConfig(schema, { ...good, [key]: bad }));
      expect(inMessage).toMatchObject({ code: ErrorCode.InvalidMessage, field: key });
      expect(inConfig).toEqual({ ...inMessage, code: ErrorCode.InvalidConfig });
    }
  });
});
