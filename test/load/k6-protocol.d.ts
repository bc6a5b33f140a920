// Types of k6-protocol.js for the TypeScript that tests it.
export declare const PROTOCOL_VERSION: number;
export declare function encode(value: unknown): Uint8Array;
export declare function decode(bytes: Uint8Array): any;
export declare function hello(options: { name: string; token?: string; jobId?: string }): Uint8Array;
export declare function heartbeat(): Uint8Array;
export declare function leave(reason: string): Uint8Array;
export declare function fetchWeights(hash: string): Uint8Array;
export declare function tensorShapes(weights: { tensors: Uint8Array }): { name: string; shape: number[] }[];
export declare function update(
  assign: { jobId: string; round: number; version: number; sampleIndices: number[]; codec: string },
  shapes: { name: string; shape: number[] }[],
  computeMs: number,
): Uint8Array;
export declare function arrayBufferOf(bytes: Uint8Array): ArrayBuffer;
