import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startScript, stopAll } from './helpers/processes.ts';
import type { GradcheckReport } from '../worker/webgpu-gradcheck.ts';

// Chromium's SwiftShader gives Dawn a Vulkan adapter on machines without a GPU.
// Debian and Ubuntu's chromium package put it here; elsewhere point TESSERA_SWIFTSHADER_DIR at it.
const SWIFTSHADER_DIR = process.env.TESSERA_SWIFTSHADER_DIR ?? '/usr/lib/chromium';
const SWIFTSHADER_ICD = join(SWIFTSHADER_DIR, 'vk_swiftshader_icd.json');
// Far above float32 reordering noise (about 1e-7 here), far below a wrong kernel.
const MAX_RELATIVE_ERROR = 1e-3;

/** Whether the optional `webgpu` package is installed, without loading Dawn into the test process. */
function webgpuInstalled(): boolean {
  try {
    createRequire(import.meta.url).resolve('webgpu');
    return true;
  } catch {
    return false;
  }
}

afterAll(stopAll);

describe('webgpu backend in the Node worker (Dawn on SwiftShader)', () => {
  it('is chosen only when forced, names the adapter, and computes the DCGAN gradients of the cpu backend', async (context) => {
    if (!webgpuInstalled()) {
      const reason = 'the optional package `webgpu` is not installed, so the Node worker has no webgpu backend';
      console.warn(`skipped: ${reason}`);
      context.skip(reason);
    }
    if (!existsSync(SWIFTSHADER_ICD)) {
      throw new Error(
        `SwiftShader's Vulkan driver ${SWIFTSHADER_ICD} is missing: install chromium (apt-get install chromium), or set TESSERA_SWIFTSHADER_DIR to the folder holding vk_swiftshader_icd.json`,
      );
    }
    // Only the child sees the driver: the rest of the suite keeps the machine's own adapters.
    const child = startScript('worker/webgpu-gradcheck.ts', [], {
      LD_LIBRARY_PATH: [SWIFTSHADER_DIR, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':'),
      VK_ICD_FILENAMES: SWIFTSHADER_ICD,
    });
    const [, json] = await child.waitFor(/GRADCHECK (.*)\n/, 90_000);
    const report = JSON.parse(json) as GradcheckReport;

    // A software adapter is slower than wasm: the automatic choice passes it over and says why.
    expect(report.automatic.name).not.toBe('webgpu');
    expect(report.automatic.skipped.find((entry) => entry.name === 'webgpu')?.reason).toMatch(/software adapter .*SwiftShader/i);
    expect(report.backend).toBe('webgpu');
    expect(report.device).toMatch(/SwiftShader/);

    expect(report.losses.webgpu.d).toBeCloseTo(report.losses.cpu.d, 5);
    expect(report.losses.webgpu.g).toBeCloseTo(report.losses.cpu.g, 5);
    const names = Object.keys(report.relativeErrors);
    expect(names).toContain('g_up2/kernel');
    expect(names).toContain('d_conv1/kernel');
    for (const name of names) expect(report.relativeErrors[name], `relative error of ${name}`).toBeLessThan(MAX_RELATIVE_ERROR);
    expect(await child.exited).toBe(0);
  });
});
