#!/usr/bin/env node
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { bytesOf, pack } from '../shared/codec/packr.ts';
import { getModel } from '../shared/models/registry.ts';
import { selectNodeBackend } from '../runtime/node/backend.ts';
import { loadCheckpoint } from './checkpoint.ts';
import { samplingWeights } from './job/state.ts';
import { shapesOf } from './job/open-job.ts';
import { sampleGridPng } from './outputs.ts';
import { describeDataset } from '../runtime/node/datasets.ts';
import { classFolders } from '../shared/data/class-folders.ts';

const USAGE = `Usage: npm run export-dataset -- --job-dir runs/JOB --per-class N [--out DIR] [--seed S]

Generates a labelled synthetic dataset from a conditional job's last
checkpoint (cdcgan, or ddpm with conditioning): N images per class, as PNG
files in a folder per class (CLASS/NNNNN.png, named by the dataset's class
names, else by the label: 0/, 1/, ...; the layout an images dataset reads
back), a labels file (labels.csv: file,label,class) and one binary file of
tensors (dataset.msgpack: {shape, images: float32 bytes in [0, 1], labels: int32 bytes, classNames}).
`;

const { values } = parseArgs({
  options: {
    'job-dir': { type: 'string' },
    'per-class': { type: 'string' },
    out: { type: 'string' },
    seed: { type: 'string', default: '1' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help || !values['job-dir'] || !values['per-class']) {
  process.stdout.write(USAGE);
  process.exit(values.help ? 0 : 2);
}
const perClass = Number(values['per-class']);
if (!Number.isInteger(perClass) || perClass < 1) {
  process.stderr.write(`--per-class must be a positive integer, got ${values['per-class']}\n`);
  process.exit(2);
}

await selectNodeBackend('wasm');
const jobDir = resolve(values['job-dir']);
const checkpoint = await loadCheckpoint(jobDir, shapesOf);
if (!checkpoint) {
  process.stderr.write(`no checkpoint in ${jobDir}\n`);
  process.exit(1);
}
const spec = getModel(checkpoint.config.model.id);
const modelConfig = spec.parseConfig(checkpoint.config.model.config);
if (spec.classes === 0 || (modelConfig as { conditional?: boolean }).conditional === false) {
  process.stderr.write(`job ${checkpoint.config.id} trains ${spec.id}, which is not class-conditional: it cannot make labelled data\n`);
  process.exit(1);
}
// The model as the job built it: for its dataset's image shape and classes.
const data = describeDataset(checkpoint.config.dataset);
const trainer = spec.createTrainer(modelConfig, data);
trainer.setWeights(samplingWeights(checkpoint.state));
const out = resolve(values.out ?? join(jobDir, 'synthetic'));
const [height, width, channels] = data.imageShape;
const imageSize = height * width * channels;
const total = perClass * data.classes;
const images = new Float32Array(total * imageSize);
const labels = new Int32Array(total);
const folders = classFolders(data.classes, data.classNames);
const lines = ['file,label,class'];
// Generated in chunks so memory stays bounded whatever N is.
const CHUNK = 100;
let written = 0;
for (let label = 0; label < data.classes; label++) {
  await mkdir(join(out, folders[label]), { recursive: true });
  for (let start = 0; start < perClass; start += CHUNK) {
    const count = Math.min(CHUNK, perClass - start);
    const chunk = await trainer.sample(count, Number(values.seed) * 1_000_003 + label * 7919 + start, new Int32Array(count).fill(label));
    for (let i = 0; i < count; i++) {
      const image = chunk.images.subarray(i * imageSize, (i + 1) * imageSize);
      const file = join(folders[label], `${String(start + i).padStart(5, '0')}.png`);
      await writeFile(join(out, file), sampleGridPng(image, 1, data.imageShape, { gutter: 0 }));
      images.set(image, written * imageSize);
      labels[written] = chunk.labels[i];
      lines.push(`${file},${chunk.labels[i]},${folders[label]}`);
      written += 1;
    }
  }
}
await writeFile(join(out, 'labels.csv'), `${lines.join('\n')}\n`);
await writeFile(
  join(out, 'dataset.msgpack'),
  pack({
    shape: [total, height, width, channels],
    images: bytesOf(images),
    labels: bytesOf(labels),
    classNames: folders,
    model: spec.id,
    version: checkpoint.state.version,
  }),
);
trainer.dispose();
process.stdout.write(`wrote ${total} images (${perClass} per class) to ${out}\n`);
