import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_DOOR_LIMITS, updateFrameLimit } from '../coordinator/limits.ts';
import { getCodec } from '../shared/codec/index.ts';
import { pack } from '../shared/codec/packr.ts';
import { ErrorCode } from '../shared/protocol/errors.ts';
import { PROTOCOL_VERSION, type CoordinatorMessage } from '../shared/protocol/messages.ts';
import { HealthWatcher, joinAsWorker, RawClient, rssBytes, startCoordinatorProcess, tinyJob, watchRss, type CoordinatorProcess } from './helpers/door.ts';
import { stopAll } from './helpers/processes.ts';

/*
 * Small bytes that cost the coordinator much: measured against the code before
 * the door, one 64 MB frame of empty msgpack maps took RSS to 4.6 GB and
 * killed the process, and a 4 MB msgpack BigInt as `type` blocked the event
 * loop for 4-11 s. Each is sent here to a real coordinator process, before
 * hello and after: it must be refused within 100 ms, RSS must grow by less
 * than 50 MB, and /health must answer within 100 ms throughout (the issue's
 * bounds). Times are measured from this process on a shared machine, so
 * each bound gets slack measured in the same run just before: for /health,
 * its slowest answer over an idle second; for a refusal, twice the slowest
 * round trip of a one-byte frame the door refuses at once; and each attack
 * is sent three times, its median held to the bound and none allowed a
 * second. On a quiet machine the slack is a few ms; a coordinator blocked for
 * seconds, as before the door, fails whatever the load.
 */

const REFUSED_WITHIN_MS = 100;
const HEALTH_WITHIN_MS = 100;
const RSS_GROWTH_BYTES = 50 * 1024 * 1024;
/** Sends of each attack: the median is held to the bound (one descheduled moment is not the door's), every one to a second. */
const TRIALS = 3;
const NEVER_MS = 1_000;
const MB = 1024 * 1024;

const outputDir = mkdtempSync(join(tmpdir(), 'tessera-amplification-'));
let coordinator: CoordinatorProcess;
let health: HealthWatcher;
/** The largest message a welcomed worker of the job may send. */
let workerLimit = 0;
/** Built once, before anything is timed: filling 64 MB takes this process a while. */
const payloads = { maps: new Uint8Array(0), bigint: new Uint8Array(0), bigintType: new Uint8Array(0) };

const hello = pack({ type: 'hello', protocol: PROTOCOL_VERSION, kind: 'node', backend: 'wasm', device: 'attacker' }).slice();

/** An array of `size - 5` empty maps: one byte each on the wire, an object each in a naive decoder. */
function emptyMaps(size: number): Uint8Array {
  const bytes = new Uint8Array(size).fill(0x80);
  bytes[0] = 0xdd;
  new DataView(bytes.buffer).setUint32(1, size - 5);
  return bytes;
}

/** msgpackr's BigInt extension (type 0x42) with `size` bytes of digits, optionally as a message's `type`. */
function bigint(size: number, asType: boolean): Uint8Array {
  const prefix = asType ? [0x81, 0xa4, ...new TextEncoder().encode('type')] : [];
  const bytes = new Uint8Array(prefix.length + 6 + size).fill(0x7f);
  bytes.set([...prefix, 0xc9]);
  new DataView(bytes.buffer).setUint32(prefix.length + 1, size);
  bytes[prefix.length + 5] = 0x42;
  return bytes;
}

/** A connection that said hello and was welcomed. */
async function welcomed(): Promise<RawClient> {
  const client = await RawClient.connect(coordinator.wsUrl);
  client.send(hello);
  expect(await client.next((message) => message.type === 'welcome', 10_000)).not.toBeNull();
  return client;
}

/** Streams one frame the size check refuses; resolves with the ms from its start to the coordinator's close frame, and its code. */
async function refusedBySize(client: RawClient, payload: Uint8Array): Promise<{ ms: number; code: number }> {
  const started = performance.now();
  const written = client.writeFrame(payload);
  const { code, at } = await client.closeFrame;
  client.close();
  await written;
  if (process.env.DOOR_DEBUG) console.log('refused by size', payload.byteLength, code, Math.round(at - started), 'ms');
  return { ms: at - started, code };
}

/** Sends one frame the decoder refuses; resolves with the ms until the reject, and the reject. */
async function refusedByDecoder(client: RawClient, payload: Uint8Array): Promise<{ ms: number; reject: CoordinatorMessage | null }> {
  const from = client.messages.length;
  const started = performance.now();
  await client.writeFrame(payload);
  const reject = await client.next((message) => message.type === 'reject', 5_000, from);
  if (process.env.DOOR_DEBUG)
    console.log('refused by decoder', payload.byteLength, reject?.type === 'reject' ? reject.code : reject, Math.round(performance.now() - started), 'ms');
  return { ms: performance.now() - started, reject };
}

/** The slowest /health answer over a second with nothing going on: the machine's own noise, as slack for the time bounds. */
async function idleSlack(): Promise<number> {
  await health.measure();
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  return (await health.read())[0];
}

/** Twice the slowest of three round trips of a frame refused at once (one reserved byte): this machine's noise for a refusal now. */
async function refusalSlack(): Promise<number> {
  const client = await RawClient.connect(coordinator.wsUrl);
  let slowest = 0;
  for (let i = 0; i < 3; i++) {
    const { ms, reject } = await refusedByDecoder(client, new Uint8Array([0xc1]));
    expect(reject).toMatchObject({ type: 'reject', code: ErrorCode.DecodeFailed });
    slowest = Math.max(slowest, ms);
  }
  client.close();
  return 2 * slowest;
}

/** Runs `attack` TRIALS times and checks its refusal times against the bound. */
async function timed(slack: number, attack: () => Promise<number>): Promise<void> {
  const times: number[] = [];
  for (let trial = 0; trial < TRIALS; trial++) times.push(await attack());
  times.sort((a, b) => a - b);
  expect(times[Math.floor(TRIALS / 2)]).toBeLessThan(REFUSED_WITHIN_MS + slack);
  expect(times.at(-1)).toBeLessThan(NEVER_MS);
}

/** Runs the attacks (given the slack for their refusal times) while /health and RSS are watched; checks both bounds after. */
async function underWatch(attacks: (slackMs: number) => Promise<void>): Promise<void> {
  const slack = await idleSlack();
  const refusal = await refusalSlack();
  const baseline = rssBytes(coordinator.pid);
  await health.measure();
  const rss = watchRss(coordinator.pid);
  let attacked: unknown;
  try {
    await attacks(refusal);
    // Long enough for a late effect (a collection, a queued decode) to show.
    await new Promise((resolve) => setTimeout(resolve, 300));
  } catch (error) {
    attacked = error;
  }
  const [slowest, largest] = await Promise.all([health.read(), rss.stop()]);
  if (process.env.DOOR_DEBUG)
    console.log(
      'slack',
      Math.round(slack),
      Math.round(refusal),
      'health',
      slowest.slice(0, 3).map(Math.round),
      'of',
      slowest.length,
      'rss growth',
      (largest.max - baseline) / 2 ** 20,
      'MiB',
    );
  if (attacked) throw attacked;
  expect(slowest.length).toBeGreaterThan(5);
  // All but the one slowest answer within the bound (one descheduled moment is not the coordinator's), and that one within a second.
  expect(slowest[1]).toBeLessThan(HEALTH_WITHIN_MS + slack);
  expect(slowest[0]).toBeLessThan(NEVER_MS);
  expect(largest.max - baseline).toBeLessThan(RSS_GROWTH_BYTES);
  expect(coordinator.started.child.exitCode).toBeNull();
}

beforeAll(async () => {
  // Rates are not what this test is about: several frames near the worker's size limit in a row must meet the size check and the decoder, not the byte rate.
  coordinator = await startCoordinatorProcess(outputDir, tinyJob(outputDir), { bytesPerSecond: 1_000_000_000_000 });
  // A worker that joins and fetches the weights: the job's shapes give the limit a welcomed worker has.
  const { client: worker, weights } = await joinAsWorker(coordinator.wsUrl);
  const shapes = Object.fromEntries(Object.entries(getCodec('f32').decode(weights)).map(([name, tensor]) => [name, tensor.shape]));
  workerLimit = updateFrameLimit(shapes, DEFAULT_DOOR_LIMITS.updateMarginBytes);
  worker.close();
  Object.assign(payloads, { maps: emptyMaps(64 * MB), bigint: bigint(4 * MB, false), bigintType: bigint(4 * MB, true) });
  health = await HealthWatcher.start(coordinator.url);
  // Once through the refusal path on both sides before anything is timed (first-call costs are not the door's).
  await refusedBySize(await RawClient.connect(coordinator.wsUrl), payloads.bigint);
});

afterAll(async () => {
  await health?.close();
  await stopAll();
  rmSync(outputDir, { recursive: true, force: true });
});

describe('amplification', () => {
  it('before hello: a 64 MB frame of empty maps and a 4 MB BigInt are refused from their header (close 1009)', async () => {
    await underWatch(async (slack) => {
      for (const payload of [payloads.maps, payloads.bigintType, payloads.bigint]) {
        await timed(slack, async () => {
          const { ms, code } = await refusedBySize(await RawClient.connect(coordinator.wsUrl), payload);
          expect(code).toBe(1009);
          return ms;
        });
      }
    });
  });

  it('after hello: the same frames are refused by the worker’s limit, and ones within it by the decoder’s budget', async () => {
    expect(workerLimit).toBeLessThan(4 * MB);
    await underWatch(async (slack) => {
      for (const payload of [payloads.maps, payloads.bigintType]) {
        await timed(slack, async () => {
          const { ms, code } = await refusedBySize(await welcomed(), payload);
          expect(code).toBe(1009);
          return ms;
        });
      }
      // As large as the worker may send: past the size check, so the decoder meets them.
      const client = await welcomed();
      const cases: [Uint8Array, ErrorCode][] = [
        [emptyMaps(workerLimit), ErrorCode.TooLarge],
        [bigint(workerLimit - 16, true), ErrorCode.DecodeFailed],
        [bigint(workerLimit - 16, false), ErrorCode.DecodeFailed],
      ];
      for (const [payload, code] of cases) {
        await timed(slack, async () => {
          const { ms, reject } = await refusedByDecoder(client, payload);
          expect(reject).toMatchObject({ type: 'reject', code });
          return ms;
        });
      }
      expect(client.isOpen).toBe(true);
    });
  });
});
