/**
 * Software rasterizers that pose as GPUs: Chromium's SwiftShader (behind
 * WebGPU and behind ANGLE's WebGL), Mesa's llvmpipe, lavapipe and softpipe,
 * Windows' WARP ("Microsoft Basic Render Driver"), and renderers that say
 * "Software" outright. They run shaders on the CPU, one dispatch at a time:
 * training on them is one to two orders of magnitude slower than wasm
 * (measured: 0.5–1.5 samples/s against 43 for wasm in the same tab).
 */
const SOFTWARE_DEVICE = /swiftshader|llvmpipe|lavapipe|softpipe|microsoft basic render|\bwarp\b|\bsoftware\b/i;

/** True when a GPU adapter description or WebGL renderer string names a software rasterizer. */
export function isSoftwareDevice(description: string): boolean {
  return SOFTWARE_DEVICE.test(description);
}
