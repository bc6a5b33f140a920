import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { describeFigures, selectBackend, type BackendCandidate } from './backends.ts';
import { createConvProbe, type Probe } from './probe.ts';

const available = (name: string): BackendCandidate => ({ name, load: async () => true });

/**
 * A probe whose steps take a set time per backend on a fake clock: which
 * backend wins is decided by the figures alone, with no timing noise.
 */
function fakeTiming(msPerStep: Record<string, number>) {
  let clock = 0;
  const steps: string[] = [];
  const createProbe = (): Probe => ({
    samples: 8,
    async step() {
      steps.push(tf.getBackend());
      clock += msPerStep[tf.getBackend()];
    },
    dispose() {},
  });
  return { createProbe, now: () => clock, steps };
}

describe('selectBackend', () => {
  it('measures every backend that loads and keeps the fastest, whatever the order', async () => {
    const timing = fakeTiming({ cpu: 40, wasm: 4 });
    const choice = await selectBackend([available('cpu'), available('wasm')], timing);
    expect(choice.name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(choice.figures.map((figure) => [figure.name, figure.msPerStep, figure.samplesPerSecond])).toEqual([
      ['wasm', 4, 2000],
      ['cpu', 40, 200],
    ]);
    // A warm-up step, then timed steps: at least three, and no more than the budget allows on the slow one.
    expect(timing.steps.filter((name) => name === 'cpu')).toHaveLength(1 + 3);
    expect(choice.figures.find((figure) => figure.name === 'wasm')!.steps).toBeGreaterThan(3);
    expect(describeFigures(choice.figures)).toBe('wasm 4.0 ms, cpu 40.0 ms per probe step');
  });

  it('times one step only of a backend ten times slower than the best so far', async () => {
    const timing = fakeTiming({ wasm: 4, cpu: 400 });
    const choice = await selectBackend([available('wasm'), available('cpu')], timing);
    expect(choice.name).toBe('wasm');
    expect(timing.steps.filter((name) => name === 'cpu')).toHaveLength(1 + 1);
    expect(choice.figures[1]).toMatchObject({ name: 'cpu', msPerStep: 400, steps: 1 });
  });

  it('passes over what is absent or refuses, with the reason, and measures the rest', async () => {
    const timing = fakeTiming({ cpu: 10 });
    const choice = await selectBackend(
      [
        {
          name: 'webgpu',
          load: async () => {
            throw new Error('software adapter SwiftShader is slower than wasm\nmore detail');
          },
        },
        { name: 'tensorflow', load: async () => false },
        available('cpu'),
      ],
      timing,
    );
    expect(choice.name).toBe('cpu');
    expect(choice.skipped).toEqual([
      { name: 'webgpu', reason: 'software adapter SwiftShader is slower than wasm' },
      { name: 'tensorflow', reason: 'not available' },
    ]);
    expect(choice.figures.map((figure) => figure.name)).toEqual(['cpu']);
  });

  it('a probe that fails counts as a skip, and with nothing measured it says why', async () => {
    const failing = {
      createProbe: (): Probe => ({
        samples: 1,
        step: async () => {
          throw new Error('kernel missing');
        },
        dispose() {},
      }),
    };
    await expect(selectBackend([available('cpu'), { name: 'tensorflow', load: async () => false }], failing)).rejects.toThrow(
      'no tfjs backend could start: cpu (kernel missing), tensorflow (not available)',
    );
  });

  it('sets a single (forced) candidate without timing it, or says why it cannot', async () => {
    const timing = fakeTiming({ cpu: 10 });
    expect(await selectBackend([available('cpu')], timing)).toEqual({ name: 'cpu', skipped: [], figures: [] });
    expect(timing.steps).toEqual([]);
    await expect(selectBackend([{ name: 'webgpu', load: async () => false }])).rejects.toThrow('no tfjs backend could start: webgpu (not available)');
  });

  it('times the real conv probe without leaving tensors behind', async () => {
    const choice = await selectBackend([available('cpu'), { name: 'tensorflow', load: async () => false }], {
      budgetMs: 1,
      createProbe: () => createConvProbe(1),
    });
    await tf.setBackend('cpu');
    const before = tf.memory().numTensors;
    const probe = createConvProbe(2);
    await probe.step();
    probe.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(choice.figures[0].msPerStep).toBeGreaterThan(0);
    expect(choice.figures[0].steps).toBeGreaterThanOrEqual(3);
  });
});
