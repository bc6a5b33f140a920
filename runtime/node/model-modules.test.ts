import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dcgan } from '../../shared/models/gan/dcgan.ts';
import { admitForData, loadModelModules } from './model-modules.ts';

const dir = mkdtempSync(join(tmpdir(), 'tessera-modules-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('admitForData', () => {
  it('checks a module family again on data other than its own, and refuses it where it breaks, naming dataset.shape', async () => {
    // The example MLP GAN, claiming to build for any shape: its networks stay 28x28x1.
    const example = fileURLToPath(new URL('../../docs/examples/mlp-gan.ts', import.meta.url));
    const path = join(dir, 'any-shape.ts');
    writeFileSync(path, `import spec from ${JSON.stringify(example)};\nexport default { ...spec, id: 'mlp-any-shape', dataShapeError: () => undefined };\n`);
    const [{ spec }] = await loadModelModules([path], { admit: true });
    const config = spec.parseConfig({ hidden: 16, latentDim: 4 });
    await expect(admitForData(spec, config, { imageShape: [28, 28, 1], classes: 0 })).resolves.toBeUndefined();
    await expect(admitForData(spec, config, { imageShape: [32, 32, 3], classes: 0 })).rejects.toMatchObject({
      code: 'INVALID_CONFIG',
      field: 'dataset.shape',
      message: expect.stringMatching(/model mlp-any-shape refused: check "runs" failed/),
    });
    // A built-in family is not checked again at job start: its tests cover every shape.
    await expect(admitForData(dcgan, { ...dcgan.defaults, width: 0 }, { imageShape: [32, 32, 3], classes: 0 })).resolves.toBeUndefined();
  });
});
