import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { isSoftwareDevice } from '../shared/tfjs/software.ts';
import { registerWasmConvKernels } from '../shared/tfjs/wasm-conv-kernels.ts';
import type { BackendCandidate } from '../shared/tfjs/backends.ts';

/** The backends a tab can offer; each present one is timed and the fastest kept (shared/tfjs/backends.ts). */
export const BROWSER_BACKENDS = ['webgpu', 'webgl', 'wasm', 'cpu'] as const;
export type BrowserBackend = (typeof BROWSER_BACKENDS)[number];

interface AdapterInfo {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}
type GpuAdapter = { info?: AdapterInfo; isFallbackAdapter?: boolean; requestAdapterInfo?(): Promise<AdapterInfo> };
type GpuNavigator = { gpu?: { requestAdapter(options?: object): Promise<GpuAdapter | null> } };

/** The adapter tfjs's webgpu backend will use, with what it says of itself; undefined when there is none. */
async function gpuAdapter(): Promise<{ name: string; software: boolean } | undefined> {
  const adapter = await (navigator as unknown as GpuNavigator).gpu?.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) return undefined;
  const info = adapter.info ?? (await adapter.requestAdapterInfo?.()) ?? {};
  const name = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ') || 'WebGPU adapter';
  return { name, software: Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter) || isSoftwareDevice(name) };
}

/** The WebGL renderer's own name (ANGLE's unmasked string names the driver, e.g. SwiftShader). */
function webglRenderer(): string | undefined {
  if (typeof OffscreenCanvas === 'undefined') return undefined;
  const gl = new OffscreenCanvas(1, 1).getContext('webgl2') as WebGL2RenderingContext | null;
  if (!gl) return undefined;
  const debug = gl.getExtension('WEBGL_debug_renderer_info');
  return String((debug ? gl.getParameter(debug.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER)) ?? 'WebGL');
}

/**
 * The candidates a tab (or its Web Worker) offers; wasm binaries come from
 * the coordinator at `wasmPath`. A software GPU (a fallback WebGPU adapter,
 * a SwiftShader or llvmpipe renderer) is passed over unless `forced`: it is
 * far slower than wasm, and timing it would take seconds of shader compiling.
 */
export function browserCandidates(wasmPath: string, forced = false): Record<BrowserBackend, BackendCandidate> {
  const hint = (name: string) => `add ?backend=${name} to the page's address to use it anyway`;
  return {
    webgpu: {
      name: 'webgpu',
      load: async () => {
        const adapter = await gpuAdapter();
        if (!adapter) return false;
        if (adapter.software && !forced) throw new Error(`software adapter ${adapter.name} is slower than wasm (${hint('webgpu')})`);
      },
    },
    webgl: {
      name: 'webgl',
      load: async () => {
        const renderer = webglRenderer();
        if (!renderer) return false;
        if (isSoftwareDevice(renderer) && !forced) throw new Error(`software renderer ${renderer} is slower than wasm (${hint('webgl')})`);
      },
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
    if (backend === 'webgpu') return (await gpuAdapter())?.name ?? 'WebGPU adapter';
    if (backend === 'webgl') return webglRenderer() ?? 'WebGL';
  } catch {
    /* fall through to the CPU description */
  }
  return `CPU (${navigator.hardwareConcurrency ?? '?'} threads, ${tf.getBackend()})`;
}
