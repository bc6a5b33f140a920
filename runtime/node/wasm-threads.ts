import * as tf from '@tensorflow/tfjs';
import { createHash } from 'node:crypto';
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os, { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/**
 * tfjs-wasm's threaded SIMD build in Node. tfjs loads it only in browsers
 * (its WASM_HAS_MULTITHREAD_SUPPORT flag is false under Node, tfjs issue 3830),
 * though the Emscripten build runs its pthreads on worker_threads. What it
 * lacks is a loader: tfjs hands Emscripten the pthread script as a Blob URL,
 * which a worker_thread cannot load. Here the script is written to a file
 * once, the build is instantiated with real paths, and registered as the
 * `wasm` backend in place of the one-thread build (the kernels, registered by
 * backend name, stay).
 */

/** XNNPACK's pool in tfjs-wasm takes at most 8 threads (8 pthreads are started with the module). */
export const MAX_WASM_THREADS = 8;

const require = createRequire(import.meta.url);
const wasmOut = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'wasm-out');

/** The pthread script, in a file named by its content (processes share it; a write is renamed into place whole). */
function pthreadScript(): string {
  const { wasmWorkerContents } = require(join(wasmOut, 'tfjs-backend-wasm-threaded-simd.worker.js')) as { wasmWorkerContents: string };
  // tfjs escapes the newlines inside the script's string literals the same way before making its Blob.
  const source = wasmWorkerContents.replace(/\n/g, '\\n');
  const path = join(tmpdir(), `tessera-wasm-pthread-${createHash('sha256').update(source).digest('hex').slice(0, 16)}.cjs`);
  if (!existsSync(path)) {
    const partial = `${path}.${process.pid}.${Date.now()}`;
    writeFileSync(partial, source);
    renameSync(partial, path);
  }
  return path;
}

/**
 * Registers the threaded SIMD build as the `wasm` backend with `threads`
 * threads (1 to MAX_WASM_THREADS); tf.setBackend('wasm') then starts it.
 * Resolves once the module is instantiated.
 */
export async function installThreadedWasm(threads: number): Promise<void> {
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_WASM_THREADS)
    throw new Error(`wasm threads must be an integer from 1 to ${MAX_WASM_THREADS}, got ${threads}`);
  const { BackendWasm, setThreadsCount } = await import('@tensorflow/tfjs-backend-wasm');
  const factory = require(join(wasmOut, 'tfjs-backend-wasm-threaded-simd.js')) as (config: object) => Promise<ThreadedModule>;
  const script = pthreadScript();
  // The module caps its pool at half the logical cores it is told of (assuming two hyperthreads a core), read from
  // os.cpus() when it is instantiated: it is told of two per thread asked for, so the pool is what the caller chose.
  const cpus = os.cpus;
  os.cpus = () => Array.from({ length: threads * 2 }, () => cpus()[0]);
  let wasm: ThreadedModule;
  try {
    wasm = await factory({
      locateFile: (path: string, prefix: string) =>
        path.endsWith('.worker.js') ? script : path.endsWith('.wasm') ? join(wasmOut, 'tfjs-backend-wasm-threaded-simd.wasm') : prefix + path,
      // Each pthread evaluates the module's script itself: from this file, not a Blob.
      mainScriptUrlOrBlob: join(wasmOut, 'tfjs-backend-wasm-threaded-simd.js'),
    });
  } finally {
    os.cpus = cpus;
  }
  // What tfjs-backend-wasm's own init() adds to the module (dist/backend_wasm.js).
  wasm.tfjs = {
    init: wasm.cwrap('init', null, []),
    initWithThreadsCount: wasm.cwrap('init_with_threads_count', null, ['number']),
    getThreadsCount: wasm.cwrap('get_threads_count', 'number', []),
    registerTensor: wasm.cwrap('register_tensor', null, ['number', 'number', 'number']),
    disposeData: wasm.cwrap('dispose_data', null, ['number']),
    dispose: wasm.cwrap('dispose', null, []),
  };
  setThreadsCount(threads);
  tf.removeBackend('wasm');
  // The priority tfjs-backend-wasm registers with.
  tf.registerBackend('wasm', () => new BackendWasm(wasm as never), 2);
}

/** The Emscripten module as tfjs uses it (the package's own type is not exported from its entry). */
interface ThreadedModule {
  cwrap(name: string, returns: string | null, args: string[]): (...args: number[]) => number;
  tfjs: Record<string, (...args: number[]) => number>;
}

/**
 * Threads for each of `workers` local workers on a machine with `cores`
 * cores: the cores shared out, none left idle by rounding down below one
 * thread, none oversubscribed, at most MAX_WASM_THREADS.
 */
export function threadsPerWorker(cores: number, workers: number): number {
  return Math.max(1, Math.min(MAX_WASM_THREADS, Math.floor(cores / Math.max(1, workers))));
}
