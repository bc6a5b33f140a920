import { createHash } from 'node:crypto';
import { getCodec } from '../../shared/codec/index.ts';
import { arraysToTensors } from '../../shared/codec/named.ts';
import { packOnce } from '../../shared/codec/packr.ts';
import type { CoordinatorMessage } from '../../shared/protocol/messages.ts';
import type { JobState } from './state.ts';

/** Weights of one version, encoded and packed once and shared by every worker that asks. */
export interface PublishedWeights {
  version: number;
  hash: string;
  codec: string;
  bytes: Uint8Array;
  /** The message that carries them to workers (a fetch's answer, or a broadcast), packed once for all of them. */
  message: Extract<CoordinatorMessage, { type: 'weights' }>;
}

/** Encodes the job's weights once per version and keeps the version before, for a worker finishing late. */
export class WeightsPublisher {
  private published: PublishedWeights | undefined;
  private previous: PublishedWeights | undefined;

  constructor(
    private readonly state: JobState,
    private readonly shapes: Record<string, number[]>,
  ) {}

  /** The current weights, encoded and hashed once per version. */
  current(): PublishedWeights {
    if (this.published?.version === this.state.version) return this.published;
    const codec = getCodec('f32');
    // A copy: the encoder's output views a larger shared buffer, and this one is kept for the whole version.
    const bytes = codec.encode(arraysToTensors(this.state.weights, this.shapes)).slice();
    // The hash workers check (shared/codec/named.ts contentHash), here in one synchronous call: Web Crypto's digest goes
    // through the thread pool and back through an event loop that, at a round's close, has hundreds of sockets to read.
    const hash = createHash('sha256').update(bytes).digest('hex');
    const version = this.state.version;
    const message = packOnce({ type: 'weights' as const, hash, version, codec: codec.id, tensors: bytes });
    this.previous = this.published;
    this.published = { version, hash, codec: codec.id, bytes, message };
    return this.published;
  }

  /** Weights by hash: the current version, or the one before (a worker finishing late may still ask). */
  byHash(hash: string): PublishedWeights | undefined {
    return [this.published, this.previous].find((weights) => weights?.hash === hash);
  }
}
