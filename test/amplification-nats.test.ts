import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCoordinator, type Coordinator } from '../coordinator/server.ts';
import { isChunk, Reassembler, splitMessage } from '../shared/codec/chunking.ts';
import { pack, unpack } from '../shared/codec/packr.ts';
import { ErrorCode } from '../shared/protocol/errors.ts';
import { PROTOCOL_VERSION, type Assign, type CoordinatorMessage } from '../shared/protocol/messages.ts';
import { subjects } from '../shared/protocol/subjects.ts';
import { selectNodeBackend } from '../runtime/node/backend.ts';
import { zeroGradients, zeroUpdate } from './helpers/door.ts';
import { freePort, NatsServer } from './helpers/nats-server.ts';

/*
 * The same budgets over NATS, where frames are at most the server's
 * max_payload (1 MB) and larger messages come in chunks: a connection that
 * has not said hello may send one small frame per message and no chunks; a
 * welcomed worker's chunks may add up to its job's largest update and no
 * more, refused at the first chunk that declares more. Real nats-server,
 * coordinator in this process (to read its refusals).
 */

const JOB = 'natsdoor';
const MB = 1024 * 1024;
const outputDir = mkdtempSync(join(tmpdir(), 'tessera-amplification-nats-'));
let server: NatsServer;
let coordinator: Coordinator;
let nc: NatsConnection;
let nextConnection = 0;
let nextMessage = 1;

beforeAll(async () => {
  await selectNodeBackend('wasm');
  server = new NatsServer(await freePort());
  await server.start();
  // The default DCGAN: its updates (2.7 MB in f32) are above one frame, so a welcomed worker chunks them.
  coordinator = await startCoordinator({
    port: 0,
    host: '127.0.0.1',
    nats: { servers: [server.url] },
    // Width 64: an update of ~2.8 MB, three chunks under the 1 MB max_payload.
    job: {
      id: JOB,
      model: { config: { width: 64 } },
      training: { batchSize: 2 },
      output: { dir: outputDir, checkpointEvery: 1_000_000, sampleEvery: 1_000_000, exportEvery: 1_000_000 },
    },
  });
  nc = await connect({ servers: server.url });
});

afterAll(async () => {
  await nc?.close();
  await coordinator?.close();
  await server?.stop();
  rmSync(outputDir, { recursive: true, force: true });
});

/** A raw NATS connection subject pair, as a worker has: what it receives, and a way to publish any frames. */
function channel() {
  const id = `door${++nextConnection}`;
  const received: CoordinatorMessage[] = [];
  // The coordinator chunks what is above one frame (the weights): put it together as a worker does.
  const reassembler = new Reassembler(64 * MB);
  nc.subscribe(subjects.toWorker(JOB, id), {
    callback: (_error, message) => {
      const frame = message.data;
      if (!isChunk(frame)) received.push(unpack(frame) as CoordinatorMessage);
      else void reassembler.add(id, frame, Date.now()).then((whole) => whole && received.push(unpack(whole) as CoordinatorMessage));
    },
  });
  const subject = subjects.toCoordinator(JOB, id);
  return {
    received,
    publish: (frame: Uint8Array) => nc.publish(subject, frame),
    /** Publishes a message as chunks of 1 MB frames, or only the first `limit` of them. */
    async chunks(message: Uint8Array, limit = Infinity) {
      const frames = await splitMessage(message, MB, nextMessage++);
      for (const frame of frames.slice(0, limit)) nc.publish(subject, frame);
      await nc.flush();
    },
    async next(predicate: (message: CoordinatorMessage) => boolean, from = 0, timeoutMs = 10_000): Promise<CoordinatorMessage> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = received.slice(from).find(predicate);
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no matching message; got ${JSON.stringify(received.slice(from).map((m) => m.type))}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
  };
}

const hello = () => pack({ type: 'hello', protocol: PROTOCOL_VERSION, kind: 'node', backend: 'wasm', device: 'nats-door' }).slice();
const refusals = (code: ErrorCode) => coordinator.hub.refusals.get(code) ?? 0;

describe('amplification over NATS', () => {
  it('before hello: no chunks, and no frame above the hello limit, are taken in', async () => {
    const stranger = channel();
    const tooLarge = refusals(ErrorCode.TooLarge);
    // 64 MB of empty maps, announced in chunks: refused at the first one.
    await stranger.chunks(new Uint8Array(64 * MB).fill(0x80), 1);
    const chunked = await stranger.next((message) => message.type === 'reject');
    expect(chunked).toMatchObject({ code: ErrorCode.TooLarge, field: 'message' });
    // One frame just under max_payload: refused by its size, before any decoding.
    const from = stranger.received.length;
    stranger.publish(new Uint8Array(MB - 1024).fill(0x80));
    expect(await stranger.next((message) => message.type === 'reject', from)).toMatchObject({ code: ErrorCode.TooLarge, field: 'message' });
    expect(refusals(ErrorCode.TooLarge)).toBe(tooLarge + 2);
    // The stranger may still say hello (and leaves, so no round waits for it).
    stranger.publish(hello());
    await stranger.next((message) => message.type === 'welcome');
    stranger.publish(pack({ type: 'leave', reason: 'done' }).slice());
  });

  it('after hello: chunks may add up to the job’s largest update and no more; a real update in chunks is acked', async () => {
    const worker = channel();
    worker.publish(hello());
    const assign = (await worker.next((message) => message.type === 'assign')) as Assign;
    // Weights come by broadcast over NATS; a worker may also fetch them.
    worker.publish(pack({ type: 'fetchWeights', hash: assign.weightsHash }).slice());
    const weights = await worker.next((message) => message.type === 'weights');
    if (weights.type !== 'weights') throw new Error('no weights');
    const tensors = zeroGradients(weights.tensors);
    expect(tensors.byteLength).toBeGreaterThan(2 * MB);

    // A message declaring 64 MB: refused at its first chunk, nothing reserved for it.
    let from = worker.received.length;
    await worker.chunks(new Uint8Array(64 * MB).fill(0x80), 1);
    expect(await worker.next((message) => message.type === 'reject', from)).toMatchObject({ code: ErrorCode.TooLarge, field: 'chunk.size' });

    from = worker.received.length;
    await worker.chunks(pack(zeroUpdate(assign, tensors)).slice());
    expect(await worker.next((message) => message.type === 'ack' || message.type === 'reject', from)).toEqual({ type: 'ack', round: assign.round });
  });
});
