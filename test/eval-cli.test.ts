import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEvalSplit } from '../coordinator/quality/load.ts';
import type { PathScore } from '../coordinator/quality/score-path.ts';
import { exportLayersModel, sampleGridPng } from '../coordinator/outputs.ts';
import { drawRows } from '../shared/eval/rows.ts';
import { dcgan } from '../shared/models/gan/dcgan.ts';
import { registerWasmConvKernels } from '../shared/tfjs/wasm-conv-kernels.ts';
import { startScript, stop, type Started } from './helpers/processes.ts';

/* `npm run eval -- PATH` as a reader runs it: a folder of PNGs and an exported model, in temporary folders. */

const CLI = 'coordinator/quality/eval-cli.ts';
let dir: string;
const running: Started[] = [];

beforeAll(async () => {
  registerWasmConvKernels();
  await tf.setBackend('wasm');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-eval-cli-'));
});
afterAll(async () => {
  await Promise.all(running.map((handle) => stop(handle)));
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Runs the CLI to its end; its exit code, stdout alone, and everything it printed. */
async function runCli(args: string[]): Promise<{ code: number | null; stdout: string; output: string }> {
  const handle = startScript(CLI, args);
  running.push(handle);
  let stdout = '';
  handle.child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const code = await handle.exited;
  return { code, stdout, output: handle.output() };
}

describe('npm run eval', () => {
  it('scores a folder of real held-out digits as real: near the floor, labels agreeing, a readable table', async () => {
    const split = loadEvalSplit('mnist');
    const pngs = path.join(dir, 'digits');
    fs.mkdirSync(pngs);
    for (const [n, row] of drawRows(split.heldOut.count, 200, 7).entries()) {
      const image = split.heldOut.images.subarray(row * 784, (row + 1) * 784);
      // sampleGridPng of one image with no gutter is that image as a 28x28 PNG.
      fs.writeFileSync(path.join(pngs, `${split.heldOut.labels[row]}-${String(n).padStart(4, '0')}.png`), sampleGridPng(image, 1, [28, 28, 1], { gutter: 0 }));
    }
    const { code, stdout, output } = await runCli([pngs]);
    expect(code, output).toBe(0);
    expect(stdout).toMatch(/200 PNG images in /);
    const frechet = stdout.match(/Fréchet distance\s+([\d.]+)\s+([\d.]+) floor/);
    expect(frechet, stdout).not.toBeNull();
    const [distance, floor] = [Number(frechet![1]), Number(frechet![2])];
    expect(distance / floor).toBeGreaterThan(0.5);
    expect(distance / floor).toBeLessThan(1.5);
    const agreement = stdout.match(/label agreement\s+([\d.]+)%/);
    expect(Number(agreement![1])).toBeGreaterThan(95);
    expect(stdout).toMatch(/recognisable \(p > 0\.9\)\s+[\d.]+%\s+[\d.]+%/);
  });

  it('scores an exported generator and prints JSON; an untrained one lands far above the floor', async () => {
    const trainer = dcgan.createTrainer(dcgan.parseConfig({ width: 4, latentDim: 8 }));
    const modelDir = path.join(dir, 'model');
    await exportLayersModel(trainer.exportModel(), modelDir, { round: 1, jobId: 'cli' });
    trainer.dispose();
    const { code, stdout, output } = await runCli([modelDir, '--count', '100', '--seed', '3', '--json']);
    expect(code, output).toBe(0);
    const result = JSON.parse(stdout) as PathScore;
    expect(result.source).toMatch(/exported model generator \(job cli, round 1\)/);
    expect(result.seed).toBe(3);
    expect(result.report.count).toBe(100);
    expect(result.report.frechet).toBeGreaterThan(10 * result.report.frechetFloor);
    expect(result.realReference.count).toBe(100);
    expect(result.heldOut.accuracy).toBeGreaterThan(0.97);
  });

  it('refuses a bad count with its field, and a missing path', async () => {
    const bad = await runCli([path.join(dir, 'model'), '--count', '3']);
    expect(bad.code).toBe(1);
    expect(bad.output).toMatch(/INVALID_CONFIG: --count must be an integer >= 10/);
    const missing = await runCli([path.join(dir, 'nowhere')]);
    expect(missing.code).toBe(1);
    expect(missing.output).toMatch(/does not exist/);
  });
});
