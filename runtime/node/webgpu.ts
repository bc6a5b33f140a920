import { isSoftwareDevice } from '../../shared/tfjs/software.ts';

/**
 * WebGPU for the Node worker through Dawn (the optional `webgpu` package).
 * The tfjs webgpu backend looks for `navigator.gpu` when it is imported, so
 * this must run before `@tensorflow/tfjs-backend-webgpu` is imported.
 */

export interface NodeWebGpu {
  /** What the adapter says it is, e.g. `SwiftShader driver 5.0.0 (google, swiftshader)`. */
  adapterName: string;
  /** A CPU rasterizer posing as a GPU (SwiftShader, llvmpipe, WARP): slower than wasm for training. */
  software: boolean;
}

/** The parts of the WebGPU API used here; the `webgpu` package's own types come with it and may be absent. */
interface AdapterInfoLike {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}
interface AdapterLike {
  info?: AdapterInfoLike;
  requestAdapterInfo?(): Promise<AdapterInfoLike>;
  isFallbackAdapter?: boolean;
}
interface GpuLike {
  requestAdapter(options?: { powerPreference?: 'high-performance' | 'low-power' }): Promise<AdapterLike | null>;
}
interface DawnModule {
  create(flags: string[]): GpuLike;
  globals: Record<string, unknown>;
}

let installed: Promise<NodeWebGpu | undefined> | undefined;

/**
 * Loads Dawn, installs `navigator.gpu` and the WebGPU globals, and describes
 * the high-performance adapter; undefined when `webgpu` is not installed or
 * there is no adapter. Idempotent: later calls return the first answer.
 */
export function installNodeWebGpu(): Promise<NodeWebGpu | undefined> {
  installed ??= install();
  return installed;
}

/**
 * On Linux Dawn reaches GPUs only through Vulkan. Without the Vulkan loader
 * it finds no adapter and prints a two-line "Couldn't load Vulkan" warning
 * from native code on every start; asking the dynamic loader first (a
 * library that is not a Node addon loads, then fails to register) lets the
 * worker pass WebGPU over quietly.
 */
export function vulkanLoaderMissing(): boolean {
  if (process.platform !== 'linux') return false;
  try {
    process.dlopen({ exports: {} } as NodeJS.Module, 'libvulkan.so.1');
  } catch (error) {
    return /cannot open shared object file/i.test((error as Error).message);
  }
  return false;
}

async function install(): Promise<NodeWebGpu | undefined> {
  const host = globalThis as { navigator?: { gpu?: GpuLike } };
  let gpu = host.navigator?.gpu;
  if (!gpu) {
    const dawn = await importDawn();
    if (!dawn) return undefined;
    // Only the names not defined yet: a runtime with its own WebGPU keeps its classes.
    for (const [name, value] of Object.entries(dawn.globals)) {
      if (!(name in globalThis)) Object.defineProperty(globalThis, name, { value, writable: true, configurable: true });
    }
    gpu = dawn.create([]);
    // Node 21+ has a global navigator (a getter on globalThis): add gpu to it rather than replace it.
    if (host.navigator) Object.defineProperty(host.navigator, 'gpu', { value: gpu, configurable: true });
    else Object.defineProperty(globalThis, 'navigator', { value: { gpu }, writable: true, configurable: true });
  }
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) return undefined;
  const info = adapter.info ?? (adapter.requestAdapterInfo ? await adapter.requestAdapterInfo() : {});
  const adapterName = describeAdapter(info);
  const software = Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter) || isSoftwareDevice(adapterName);
  return { adapterName, software };
}

/** The `webgpu` package, or undefined when it (or its prebuilt Dawn for this platform) is missing. */
async function importDawn(): Promise<DawnModule | undefined> {
  // A variable specifier: the type checker must not require an optional dependency.
  const specifier = 'webgpu';
  try {
    return (await import(/* @vite-ignore */ specifier)) as DawnModule;
  } catch {
    return undefined;
  }
}

/** `description (vendor, architecture, device)` with the empty parts left out; browsers may blank any of them. */
export function describeAdapter(info: AdapterInfoLike): string {
  const details = [info.vendor, info.architecture, info.device].filter((part) => part && part !== info.description);
  const name = info.description || details.shift() || 'unknown WebGPU adapter';
  return details.length > 0 ? `${name} (${details.join(', ')})` : name;
}
