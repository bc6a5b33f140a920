import { createHash } from 'node:crypto';
import { describeDataset, loadDataset } from '../runtime/node/datasets.ts';
import { keepShardFile } from '../runtime/node/images-shards.ts';
import type { InMemoryDataset } from '../shared/data/dataset.ts';
import type { DatasetSpec } from '../shared/data/registry.ts';
import { encodeShard } from '../shared/data/shard-blobs.ts';
import { makeShards, splitDataset } from '../shared/data/shards.ts';
import type { DataShape } from '../shared/models/types.ts';
import type { WelcomeDataset } from '../shared/protocol/messages.ts';
import type { JobConfig } from '../shared/api/job-config.ts';

/** A job's data as the coordinator hands it out. */
export interface JobData {
  spec: DatasetSpec;
  /** What the model is built for: the dataset's image shape and classes. */
  dataShape: DataShape;
  /** What a welcome tells workers of it. */
  welcome: WelcomeDataset;
  /** A folder dataset's shard blobs by content hash (empty for a packaged dataset, whose examples are served by index). */
  shards: ReadonlyMap<string, Uint8Array>;
  /** A folder dataset's hash over its shards' hashes, in order: what a checkpoint remembers of the images it was trained on. */
  dataHash?: string;
  /**
   * The examples, loaded on first use and then kept: the job's outputs, referee and example route read them from here,
   * so a folder is listed and checked for changes once, when the job opens, not at every use.
   */
  dataset(): InMemoryDataset;
}

const byConfig = new WeakMap<JobConfig, JobData>();

/**
 * The data of a job's config, worked out once per config object: its spec,
 * and for a folder dataset every shard of the job (the same split and cut the
 * Job makes from dataset.heldOutFraction, training.seed and dataset.shards)
 * encoded and hashed. The blobs are also written to the dataset cache under
 * their hash, where Node workers on this machine find them without asking.
 */
export function jobData(config: JobConfig): JobData {
  let data = byConfig.get(config);
  if (data) return data;
  const spec = describeDataset(config.dataset);
  const dataShape: DataShape = { imageShape: spec.imageShape, classes: spec.classes };
  const welcome: WelcomeDataset = { id: spec.id, imageShape: [...spec.imageShape], classes: spec.classes };
  const shards = new Map<string, Uint8Array>();
  let loaded: InMemoryDataset | undefined;
  const dataset = () => (loaded ??= loadDataset(config.dataset));
  if (spec.folder) {
    const split = splitDataset(dataset().count, config.dataset.heldOutFraction, config.training.seed);
    welcome.shardHashes = makeShards(split.train, config.dataset.shards).map((indices) => {
      const bytes = encodeShard(dataset(), indices);
      // The sha256 a tab computes with Web Crypto (shared/codec/named.ts contentHash), here synchronously.
      const hash = createHash('sha256').update(bytes).digest('hex');
      shards.set(hash, bytes);
      keepShardFile(hash, bytes);
      return hash;
    });
  }
  const dataHash = welcome.shardHashes ? createHash('sha256').update(welcome.shardHashes.join(',')).digest('hex') : undefined;
  data = { spec, dataShape, welcome, shards, dataset, ...(dataHash ? { dataHash } : {}) };
  byConfig.set(config, data);
  return data;
}
