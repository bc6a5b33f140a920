/**
 * The globals shared/ may use: those Node 20+ and every browser (window and
 * Web Worker) both provide, declared as narrowly as shared/ needs them. Only
 * shared/tsconfig.json sees this file: the rest of the project compiles with
 * the DOM and Node types, which declare the same globals in full.
 */
declare type TimerHandle = { readonly __timer: unique symbol } | number;
declare function setTimeout(callback: (...args: never[]) => void, ms?: number): TimerHandle;
declare function clearTimeout(handle: TimerHandle | undefined): void;
declare function setInterval(callback: () => void, ms?: number): TimerHandle;
declare function clearInterval(handle: TimerHandle | undefined): void;
declare function structuredClone<T>(value: T): T;
declare const performance: { now(): number };
declare class TextDecoder {
  constructor(label?: string, options?: { fatal?: boolean; ignoreBOM?: boolean });
  decode(input?: Uint8Array): string;
}
declare class TextEncoder {
  encode(input?: string): Uint8Array;
}
// eslint-disable-next-line no-var -- a global declared as `var` is what makes it a property of globalThis too.
declare var crypto: {
  getRandomValues<T extends ArrayBufferView>(array: T): T;
  subtle: { digest(algorithm: 'SHA-256', data: Uint8Array<ArrayBuffer>): Promise<ArrayBuffer> };
};
/** The part of WebAssembly that shared/aggregate/simd.ts uses. */
declare namespace WebAssembly {
  class Memory {
    readonly buffer: ArrayBuffer;
    grow(pages: number): number;
  }
  class Module {
    constructor(bytes: Uint8Array);
  }
  class Instance {
    constructor(module: Module);
    readonly exports: Record<string, unknown>;
  }
  function validate(bytes: Uint8Array): boolean;
}
