import { losslessData, wireCodec } from './tensor-wire.ts';

/** Lossless: every dtype travels as its host bytes, so decode(encode(x)) is bit-identical. */
export const f32Codec = wireCodec('f32', true, losslessData);
