import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { registerWasmConvKernels } from '../shared/tfjs/wasm-conv-kernels.ts';
import type { BackendCandidate } from '../shared/tfjs/backends.ts';

/** The browser's order of preference: the GPU through WebGPU, then WebGL, then wasm, then plain JS. */
export const BROWSER_BACKENDS = ['webgpu', 'webgl', 'wasm', 'cpu'] as const;
export type BrowserBackend = (typeof BROWSER_BACKENDS)[number];

type GpuAdapter = { info?: Record<string, string>; requestAdapterInfo?(): Promise<Record<string, string>> };
type GpuNavigator = { gpu?: { requestAdapter(options?: object): Promise<GpuAdapter | null> } };

/** The candidates a tab (or its Web Worker) offers; wasm binaries come from the coordinator at `wasmPath`. */
export function browserCandidates(wasmPath: string): Record<BrowserBackend, BackendCandidate> {
  return {
    webgpu: {
      name: 'webgpu',
      load: async () => {
        const gpu = (navigator as unknown as GpuNavigator).gpu;
        return !!gpu && (await gpu.requestAdapter({ powerPreference: 'high-performance' })) !== null;
      },
    },
    webgl: {
      name: 'webgl',
      load: async () => typeof OffscreenCanvas !== 'undefined' && new OffscreenCanvas(1, 1).getContext('webgl2') !== null,
    },
    wasm: {
      name: 'wasm',
      load: async () => {
        setWasmPaths(wasmPath);
        registerWasmConvKernels();
      },
    },
    cpu: { name: 'cpu', load: async () => true },
  };
}

/** A human name for what the backend runs on: the GPU adapter, the WebGL renderer, or the CPU. */
export async function describeDevice(backend: string): Promise<string> {
  try {
    if (backend === 'webgpu') {
      const adapter = await (navigator as unknown as GpuNavigator).gpu!.requestAdapter({ powerPreference: 'high-performance' });
      const info = adapter?.info ?? (await adapter?.requestAdapterInfo?.()) ?? {};
      const name = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ');
      return name || 'WebGPU adapter';
    }
    if (backend === 'webgl') {
      const gl = new OffscreenCanvas(1, 1).getContext('webgl2') as WebGL2RenderingContext | null;
      const debug = gl?.getExtension('WEBGL_debug_renderer_info');
      return (debug ? gl!.getParameter(debug.UNMASKED_RENDERER_WEBGL) : gl?.getParameter(gl.RENDERER)) ?? 'WebGL';
    }
  } catch {
    /* fall through to the CPU description */
  }
  return `CPU (${navigator.hardwareConcurrency ?? '?'} threads, ${tf.getBackend()})`;
}
