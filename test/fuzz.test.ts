import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { messageBudget } from '../coordinator/limits.ts';
import { getCodec } from '../shared/codec/index.ts';
import { pack } from '../shared/codec/packr.ts';
import { decodeUntrusted } from '../shared/codec/untrusted.ts';
import { ErrorCode } from '../shared/protocol/errors.ts';
import { parseWorkerMessage, type Assign, type CoordinatorMessage } from '../shared/protocol/messages.ts';
import { createUniform } from '../shared/training/random.ts';
import { FrameGenerator, type FrameKind, type FuzzContext } from './fuzz-frames.ts';
import { joinAsWorker, RawClient, startCoordinatorProcess, tinyJob, zeroGradients, type CoordinatorProcess } from './helpers/door.ts';
import { stopAll } from './helpers/processes.ts';

/*
 * Generated frames against a real coordinator process, from a registered
 * worker and from a connection that never said hello. The process must not
 * crash or hang; every frame is refused with a typed error or is valid; and
 * no frame that was not accepted (acked) moves the weights: between two
 * assignments the version and the weights' hash stay unless an ack came.
 *
 * Each frame is followed by a probe (a hello of an unknown protocol, answered
 * with a PROTOCOL_MISMATCH naming it), so the answers between two probes are
 * the answers to one frame, with frames sent in batches.
 */

const FRAMES_PER_PHASE = 10_000;
const BATCH = 100;
/** A batch not answered by then is a hang. */
const BATCH_TIMEOUT_MS = 20_000;
/** Probe protocols start here: far from the real one, within what a hello may claim (1,000,000). */
const PROBE_BASE = 100_000;
const KNOWN_CODES = new Set<string>(Object.values(ErrorCode));
/** Answers a frame may get; anything else (an internal error, a message type nobody sends) fails the test. */
const ANSWERS = new Set<CoordinatorMessage['type']>(['reject', 'ack', 'assign', 'weights', 'welcome', 'idle', 'error']);

const outputDir = mkdtempSync(join(tmpdir(), 'tessera-fuzz-'));
let coordinator: CoordinatorProcess;
let probes = 0;
let acks = 0;

beforeAll(async () => {
  // The trust layer is not what this test is about: a worker refused thousands of times is quarantined, and a
  // quarantined worker's valid updates are acknowledged but not applied, which would part the version from the acks.
  const job = tinyJob(outputDir);
  job.training = { ...(job.training as object), verification: { duplicateShare: 0, quarantineBelow: 0 } };
  coordinator = await startCoordinatorProcess(outputDir, job, {
    // Limits on rate and on waiting connections are not what this test is about: raised out of its way.
    messagesPerSecond: 10_000_000,
    messageBurst: 10_000_000,
    bytesPerSecond: 1_000_000_000_000,
    maxPreHelloPerAddress: 10_000,
    maxPreHelloTotal: 10_000,
  });
});

afterAll(async () => {
  await stopAll();
  rmSync(outputDir, { recursive: true, force: true });
});

interface Tally {
  answered: number;
  /** Frames answered on a connection that had not been welcomed (yet). */
  beforeHello: number;
  byKind: Partial<Record<FrameKind, number>>;
  byCode: Record<string, number>;
  reconnects: number;
  accepted: number;
}

/** The probe sent after a frame, and how its answer is recognised. */
function probe(): { bytes: Uint8Array; isAnswer: (message: CoordinatorMessage) => boolean } {
  const protocol = PROBE_BASE + ++probes;
  return {
    bytes: pack({ type: 'hello', protocol, kind: 'node', backend: 'probe', device: 'probe' }).slice(),
    // The message ends with the worker's protocol; the field (protocol) travels beside it, not in it.
    isAnswer: (message) => message.type === 'reject' && message.code === ErrorCode.ProtocolMismatch && message.message.endsWith(`worker ${protocol}`),
  };
}

/** True for a frame the door takes as a valid heartbeat: the one valid message that gets no answer. */
function isHeartbeat(bytes: Uint8Array): boolean {
  try {
    return parseWorkerMessage(decodeUntrusted(bytes, messageBudget(bytes.byteLength || 1))).type === 'heartbeat';
  } catch {
    return false;
  }
}

/** Checks the answers to one frame: each of a known kind and a known code, and no silence unless it was a heartbeat. */
function checkAnswers(answers: CoordinatorMessage[], frame: Uint8Array, tally: Tally, kind: FrameKind): void {
  for (const answer of answers) {
    expect(ANSWERS.has(answer.type), `answer ${answer.type} to a ${kind} frame`).toBe(true);
    if (answer.type === 'reject' || answer.type === 'error') {
      expect(KNOWN_CODES.has(answer.code), `code ${answer.code}`).toBe(true);
      expect(answer.code, `a ${kind} frame: ${answer.message}`).not.toBe(ErrorCode.Internal);
      tally.byCode[answer.code] = (tally.byCode[answer.code] ?? 0) + 1;
    }
  }
  if (answers.length === 0) expect(isHeartbeat(frame), `a ${kind} frame got no answer`).toBe(true);
}

/**
 * Between two assignments the weights move only if an update was acked:
 * the version goes up by one with an ack, else it and the hash stay.
 */
class WeightsWatch {
  private last: Assign | undefined;
  private ackedSince = false;

  see(message: CoordinatorMessage): void {
    if (message.type === 'ack') {
      acks += 1;
      this.ackedSince = true;
    }
    if (message.type !== 'assign' || (this.last && message.round <= this.last.round)) return;
    if (this.last) {
      if (this.ackedSince) expect(message.version).toBe(this.last.version + 1);
      else expect({ version: message.version, hash: message.weightsHash }).toEqual({ version: this.last.version, hash: this.last.weightsHash });
    }
    this.last = message;
    this.ackedSince = false;
  }
}

/**
 * Sends frames on connections made by `connect`, batch by batch, until
 * `count` were answered (as `stranger`: answered before any hello was
 * accepted on their connection). Reconnects when a frame closed the
 * connection (a frame too large, a fatal hello), after checking that it was
 * such a frame, and as a stranger after a frame that was a valid hello.
 */
async function fuzz(
  count: number,
  seed: number,
  as: 'worker' | 'stranger',
  connect: () => Promise<{ client: RawClient; context: FuzzContext }>,
  watch?: WeightsWatch,
): Promise<Tally> {
  // A stranger's valid hello ends it being one: fewer hellos keep it a stranger for longer.
  const generator = new FrameGenerator(createUniform(seed), as === 'stranger' ? 0.05 : 0.2);
  const tally: Tally = { answered: 0, beforeHello: 0, byKind: {}, byCode: {}, reconnects: 0, accepted: 0 };
  let { client, context } = await connect();
  let seen = 0;
  let welcomed = false;
  while ((as === 'stranger' ? tally.beforeHello : tally.answered) < count) {
    const batch = Array.from({ length: BATCH }, () => ({ ...generator.frame(context), probe: probe() }));
    const from = client.messages.length;
    for (const frame of batch) {
      client.send(frame.bytes);
      client.send(frame.probe.bytes);
    }
    const last = await client.next(batch.at(-1)!.probe.isAnswer, BATCH_TIMEOUT_MS, from);
    if (!last) expect(client.isOpen, `batch not answered within ${BATCH_TIMEOUT_MS} ms: the coordinator hangs`).toBe(false);
    // Split the answers at the probes.
    let cursor = from;
    for (const frame of batch) {
      const end = client.messages.findIndex((message, index) => index >= cursor && frame.probe.isAnswer(message));
      if (end < 0) {
        // This frame closed the connection (or came after the one that did): see why, then start over on a new one.
        const answers = client.messages.slice(cursor);
        const { code, reason } = await client.closed;
        const fatal =
          answers.some((answer) => answer.type === 'error') ||
          answers.some((answer) => answer.type === 'reject' && answer.code === ErrorCode.NotRegistered && answer.field === 'hello');
        expect(
          code === 1009 || reason === 'bye' || fatal || client.closedByUs,
          `connection closed (${code} ${reason}) after a ${frame.kind} frame: ${JSON.stringify(answers.slice(-3))}`,
        ).toBe(true);
        break;
      }
      const answers = client.messages.slice(cursor, end);
      checkAnswers(answers, frame.bytes, tally, frame.kind);
      tally.answered += 1;
      if (!welcomed) tally.beforeHello += 1;
      welcomed ||= answers.some((answer) => answer.type === 'welcome');
      tally.byKind[frame.kind] = (tally.byKind[frame.kind] ?? 0) + 1;
      cursor = end + 1;
    }
    for (const message of client.messages.slice(seen)) {
      watch?.see(message);
      if (message.type === 'ack') tally.accepted += 1;
      if (message.type === 'assign') context = { ...context, assign: message };
    }
    seen = client.messages.length;
    if (!client.isOpen || !last || (as === 'stranger' && welcomed)) {
      tally.reconnects += 1;
      client.close();
      ({ client, context } = await connect());
      seen = 0;
      welcomed = false;
    }
  }
  client.close();
  return tally;
}

describe('fuzz', () => {
  it(`answers ${FRAMES_PER_PHASE} frames from a registered worker with a typed refusal or as valid, and only acked updates move the weights`, async () => {
    const watch = new WeightsWatch();
    let tensors: Uint8Array | undefined;
    const connect = async () => {
      const { client, assign, weights } = await joinAsWorker(coordinator.wsUrl, 'fuzzed');
      tensors ??= zeroGradients(weights);
      watch.see(assign);
      return { client, context: { assign, tensors } };
    };
    const tally = await fuzz(FRAMES_PER_PHASE, 1, 'worker', connect, watch);
    if (process.env.DOOR_DEBUG) console.log('registered worker', JSON.stringify(tally));
    expect(tally.answered).toBeGreaterThanOrEqual(FRAMES_PER_PHASE);
    // Every kind was sent, and some updates were valid enough to be applied.
    expect(Object.keys(tally.byKind)).toHaveLength(9);
    expect(tally.accepted).toBeGreaterThan(0);
  });

  it(`answers ${FRAMES_PER_PHASE} frames from a connection that never said hello, and the process is still well`, async () => {
    // A stranger has no assignment; its frames are built around a stale one (they are refused before it matters),
    // with small tensors so that most fit the limit before hello (larger ones close the connection, and are sent too).
    const { client: worker, assign } = await joinAsWorker(coordinator.wsUrl, 'template');
    const context = {
      assign,
      tensors: getCodec('f32')
        .encode({ w: { dtype: 'float32', shape: [64], data: new Float32Array(64) } })
        .slice(),
    };
    worker.close();
    const connect = async () => ({ client: await RawClient.connect(coordinator.wsUrl), context });
    const tally = await fuzz(FRAMES_PER_PHASE, 2, 'stranger', connect);
    if (process.env.DOOR_DEBUG) console.log('stranger', JSON.stringify(tally));
    expect(tally.beforeHello).toBeGreaterThanOrEqual(FRAMES_PER_PHASE);
    expect(tally.byCode[ErrorCode.DecodeFailed]).toBeGreaterThan(0);
    expect(tally.byCode[ErrorCode.NotRegistered]).toBeGreaterThan(0);
    // Nothing a stranger sent was applied, and the coordinator answers as before.
    const job = await (await fetch(`${coordinator.url}/api/jobs/door`)).json();
    expect(job.version).toBe(acks);
    expect((await fetch(`${coordinator.url}/health`)).ok).toBe(true);
    expect(coordinator.started.child.exitCode).toBeNull();
  });
});
