import * as tf from '@tensorflow/tfjs';
import { dnnlUnavailable, replaced, setDnnlThreads, type Kernel } from './dnnl-addon.ts';
import { conv2dBackpropFilter } from './dnnl-conv2d-backprop-filter.ts';
import { conv2dBackpropInput } from './dnnl-conv2d-backprop-input.ts';
import { conv2d, fusedConv2d } from './dnnl-conv2d.ts';
import { sum } from './dnnl-sum.ts';

export { dnnlCalls, dnnlUnavailable } from './dnnl-addon.ts';

/*
 * The wasm backend's convolutions run by oneDNN through the optional addon of
 * native/ (see dnnl-addon.ts): Conv2D, FusedConv2D, Conv2DBackpropInput (also
 * every transposed convolution's forward pass) and Conv2DBackpropFilter, one
 * file each, and Sum (plain C++ in the addon). What they do not take (NCHW, other activations, a broadcast
 * bias) goes to the kernel registered before them, the project's or wasm's
 * own. Not built or TESSERA_NATIVE_KERNELS=0: nothing changes.
 */

const KERNELS: Record<string, Kernel> = {
  Conv2D: conv2d,
  FusedConv2D: fusedConv2d,
  Conv2DBackpropInput: conv2dBackpropInput,
  Conv2DBackpropFilter: conv2dBackpropFilter,
  Sum: sum,
};

/**
 * Registers the oneDNN convolutions for the wasm backend over whatever is
 * registered now (call it after registerWasmConvKernels), with `threads`
 * OpenMP threads. Returns why not when the addon is not usable; nothing is
 * changed then.
 */
export function registerDnnlKernels(threads = 1): string | undefined {
  const why = dnnlUnavailable();
  if (why) return why;
  setDnnlThreads(threads);
  if (replaced.size > 0) return undefined;
  for (const [name, kernelFunc] of Object.entries(KERNELS)) {
    const before = tf.getKernel(name, 'wasm');
    if (!before) throw new Error(`the wasm backend has no ${name} kernel to stand in for`);
    replaced.set(name, before);
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({ ...before, kernelFunc: kernelFunc as tf.KernelFunc });
  }
  return undefined;
}

/** Puts back the kernels registerDnnlKernels replaced (for tests comparing the two). */
export function unregisterDnnlKernels(): void {
  for (const [name, before] of replaced) {
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel(before);
  }
  replaced.clear();
}
