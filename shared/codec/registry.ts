import { ErrorCode, TesseraError, describe } from '../protocol/errors.ts';
import type { TensorCodec } from './types.ts';

// Keyed by the id that travels in messages, so a peer's `codec` field finds its decoder.
const codecs = new Map<string, TensorCodec>();

/** Adds a codec; a second codec with the same id would make the wire id ambiguous, so it throws. */
export function registerCodec(codec: TensorCodec): void {
  if (typeof codec?.id !== 'string' || codec.id.length === 0) {
    throw new TesseraError(ErrorCode.Internal, `codec id must be a non-empty string, got ${describe(codec?.id)}`);
  }
  if (codecs.has(codec.id)) {
    throw new TesseraError(ErrorCode.Internal, `a codec with id ${JSON.stringify(codec.id)} is already registered`);
  }
  codecs.set(codec.id, codec);
}

/** The codec for a wire id; an unknown (or non-string) id is the peer's error: UnknownCodec on field `codec`. */
export function getCodec(id: unknown): TensorCodec {
  const codec = typeof id === 'string' ? codecs.get(id) : undefined;
  if (!codec) {
    throw new TesseraError(ErrorCode.UnknownCodec, `unknown codec ${describe(id)}; known: ${[...codecs.keys()].join(', ') || 'none'}`, { field: 'codec' });
  }
  return codec;
}

/** Every registered codec, in registration order. */
export function listCodecs(): TensorCodec[] {
  return [...codecs.values()];
}
