import * as tf from '@tensorflow/tfjs';
import { cpus } from 'node:os';
import { selectBackend, type BackendCandidate, type BackendChoice } from '../../shared/tfjs/backends.ts';
import { installThreadedWasm } from './wasm-threads.ts';
import { installNodeWebGpu, vulkanLoaderMissing } from './webgpu.ts';

export const NODE_BACKENDS = ['tensorflow', 'webgpu', 'wasm', 'cpu'] as const;

/** Imports a package that may be absent, without the bundler or type checker requiring it. */
async function importOptional(name: string): Promise<boolean> {
  try {
    await import(/* @vite-ignore */ name);
    return true;
  } catch {
    return false;
  }
}

/**
 * Node's candidates: libtensorflow through tfjs-node-gpu or tfjs-node when one
 * is installed (they are optional: their install downloads libtensorflow),
 * WebGPU through Dawn (the optional `webgpu` package), wasm with the
 * project's conv kernels (and oneDNN's convolutions where the optional addon
 * of native/ is built), and plain JS. A software WebGPU adapter is passed
 * over unless forced: it runs shaders on the CPU, far slower than wasm.
 */
function nodeCandidates(forced: boolean, wasmThreads: number): Record<(typeof NODE_BACKENDS)[number], BackendCandidate> {
  return {
    tensorflow: {
      name: 'tensorflow',
      load: async () => (await importOptional('@tensorflow/tfjs-node-gpu')) || (await importOptional('@tensorflow/tfjs-node')),
    },
    webgpu: {
      name: 'webgpu',
      load: async () => {
        if (!forced && vulkanLoaderMissing()) throw new Error('no Vulkan loader (libvulkan.so.1) for Dawn to reach a GPU through');
        const webgpu = await installNodeWebGpu();
        if (!webgpu) throw new Error('no WebGPU adapter, or the optional package webgpu is not installed');
        if (webgpu.software && !forced) throw new Error(`software adapter ${webgpu.adapterName} is slower than wasm (use --backend webgpu to force it)`);
        // Imported only now: it registers itself only if navigator.gpu exists at import time.
        await import('@tensorflow/tfjs-backend-webgpu');
      },
    },
    wasm: {
      name: 'wasm',
      load: async () => {
        await import('@tensorflow/tfjs-backend-wasm');
        // More than one thread: the threaded SIMD build, which tfjs itself loads only in browsers.
        if (wasmThreads > 1) await installThreadedWasm(wasmThreads);
        const { registerWasmConvKernels } = await import('../../shared/tfjs/wasm-conv-kernels.ts');
        registerWasmConvKernels();
        // The convolutions in oneDNN where its optional addon is built (native/build.sh), on as many threads as wasm has.
        const { registerDnnlKernels } = await import('./dnnl-kernels.ts');
        registerDnnlKernels(wasmThreads);
      },
    },
    cpu: {
      name: 'cpu',
      load: async () => {
        // tfjs-backend-cpu prints "install tfjs-node" advice at its first tensor in Node. Timing it is not choosing
        // it, and the worker logs what it chose and why: mark the backend used so calibration stays quiet.
        await tf.setBackend('cpu');
        const backend = tf.findBackend('cpu') as { firstUse?: boolean } | null;
        if (backend) backend.firstUse = false;
      },
    },
  };
}

export interface NodeBackendOptions {
  /** Threads of the wasm backend (default 1: its one-thread build). */
  wasmThreads?: number;
}

/**
 * Measures every backend present and keeps the fastest (shared/tfjs/backends.ts),
 * or takes the one asked for (and only it, measured for the log).
 */
export async function selectNodeBackend(forced?: string, options: NodeBackendOptions = {}): Promise<BackendChoice & { device: string }> {
  const candidates = nodeCandidates(Boolean(forced), options.wasmThreads ?? 1);
  let order: BackendCandidate[];
  if (forced) {
    const candidate = candidates[forced as keyof typeof candidates];
    if (!candidate) throw new Error(`unknown backend ${JSON.stringify(forced)}; known: ${NODE_BACKENDS.join(', ')}`);
    order = [candidate];
  } else {
    order = NODE_BACKENDS.map((name) => candidates[name]);
  }
  const choice = await selectBackend(order);
  return { ...choice, device: await describeDevice(choice.name) };
}

async function describeDevice(backend: string): Promise<string> {
  const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU';
  if (backend === 'tensorflow') return `libtensorflow on ${cpu}`;
  if (backend === 'webgpu') {
    const webgpu = await installNodeWebGpu();
    return `WebGPU ${webgpu?.adapterName ?? 'adapter'}${webgpu?.software ? `, software on ${cpu}` : ''}`;
  }
  if (backend === 'wasm') {
    const { getThreadsCount } = await import('@tensorflow/tfjs-backend-wasm');
    const threads = getThreadsCount();
    const { dnnlUnavailable } = await import('./dnnl-addon.ts');
    const convolutions = dnnlUnavailable() === undefined ? ', convolutions in oneDNN' : '';
    return `${cpu} (${cpus().length} cores, wasm, ${threads} thread${threads === 1 ? '' : 's'}${convolutions})`;
  }
  return `${cpu} (${cpus().length} cores, ${tf.getBackend()})`;
}
