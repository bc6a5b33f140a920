import { f16Codec } from './f16.ts';
import { f32Codec } from './f32.ts';
import { int8Codec } from './int8.ts';
import { registerCodec } from './registry.ts';

// Registered once, here, so importing the codec module is all a peer needs to decode any wire id.
registerCodec(f32Codec);
registerCodec(f16Codec);
registerCodec(int8Codec);

export * from './types.ts';
export * from './packr.ts';
export * from './tensor-wire.ts';
export * from './registry.ts';
export * from './f32.ts';
export * from './f16.ts';
export * from './int8.ts';
export * from './error-feedback.ts';
