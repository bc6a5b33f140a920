import * as tf from '@tensorflow/tfjs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { PNG } from 'pngjs';

/**
 * Lays out images (NHWC, pixels in [0, 1]) on a square grid with a one-pixel
 * gutter and encodes it as a PNG in the images' colours: greyscale for one
 * channel, RGB for three (no alpha: every pixel is opaque).
 */
export function sampleGridPng(
  images: Float32Array,
  count: number,
  [height, width, channels]: [number, number, number],
  options: { columns?: number; gutter?: number } = {},
): Uint8Array {
  const columns = options.columns ?? Math.ceil(Math.sqrt(count));
  const rows = Math.ceil(count / columns);
  const gutter = options.gutter ?? 1;
  const png = new PNG({ width: columns * (width + gutter) + gutter, height: rows * (height + gutter) + gutter });
  png.data.fill(255);
  for (let n = 0; n < count; n++) {
    const left = gutter + (n % columns) * (width + gutter);
    const top = gutter + Math.floor(n / columns) * (height + gutter);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const source = ((n * height + y) * width + x) * channels;
        const target = ((top + y) * png.width + left + x) * 4;
        for (let c = 0; c < 3; c++) {
          const value = images[source + (channels === 1 ? 0 : c)];
          png.data[target + c] = Math.round(Math.min(1, Math.max(0, value)) * 255);
        }
        png.data[target + 3] = 255;
      }
    }
  }
  return PNG.sync.write(png, { colorType: channels === 1 ? 0 : 2 });
}

/** Writes a file by way of a temporary name, so a reader never sees half of it. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, data);
  await rename(temporary, path);
}

/**
 * Saves a LayersModel as `model.json` plus `weights.bin` in `dir`, the layout
 * `tf.loadLayersModel` reads (over HTTP, or from files with a file loader).
 * Written to a sibling folder first and swapped in, so a reader never sees a
 * model.json whose weights belong to another version.
 */
export async function exportLayersModel(model: tf.LayersModel, dir: string, metadata: Record<string, unknown> = {}): Promise<void> {
  const staging = `${dir}.${process.pid}.staging`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weightData = artifacts.weightData as ArrayBuffer;
      await writeFile(join(staging, 'weights.bin'), new Uint8Array(weightData));
      const modelJson = {
        format: 'layers-model',
        generatedBy: `TensorFlow.js tfjs-layers v${tf.version_layers}`,
        convertedBy: null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
        userDefinedMetadata: metadata,
      };
      await writeFile(join(staging, 'model.json'), JSON.stringify(modelJson));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', weightDataBytes: weightData.byteLength } };
    }),
  );
  await rm(dir, { recursive: true, force: true });
  await rename(staging, dir);
}
