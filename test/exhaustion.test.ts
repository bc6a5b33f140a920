import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../shared/protocol/errors.ts';
import { busyWorker, joinAsWorker, RawClient, rssBytes, startCoordinatorProcess, tinyJob, watchRss, type CoordinatorProcess } from './helpers/door.ts';
import { stopAll } from './helpers/processes.ts';

/*
 * Holding the coordinator's resources without paying for them: measured
 * before the door, 2,000 sockets that never said hello stayed open, and 60
 * event streams that never read grew the heap from 126 to 448 MB. Against a
 * real coordinator process: the sockets are closed by the hello deadline,
 * and the streams leave RSS within 100 MB of where it started, coming back
 * when they close. (The dataset-examples clients are another test's.)
 */

const SOCKETS = 2_000;
/** Short, so the test is; the default is 10 s. */
const HELLO_DEADLINE_MS = 2_000;
/** Connections closed later than this after the deadline count as not closed by it (a loaded CI machine is slow). */
const DEADLINE_SLACK_MS = 4_000;
const STREAMS = 60;
const RSS_BOUND_BYTES = 100 * 1024 * 1024;
const MB = 1024 * 1024;

const outputDir = mkdtempSync(join(tmpdir(), 'tessera-exhaustion-'));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

afterAll(async () => {
  await stopAll();
  rmSync(outputDir, { recursive: true, force: true });
});

/** Opens an event stream and never reads from it: what a stalled dashboard tab, or an attacker, does. */
function stalledStream(coordinator: CoordinatorProcess, jobId: string): Promise<Socket> {
  const { hostname, port } = new URL(coordinator.url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) }, () => {
      socket.write(`GET /api/jobs/${jobId}/events HTTP/1.1\r\nHost: ${hostname}\r\nAccept: text/event-stream\r\n\r\n`);
      socket.pause();
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

describe('exhaustion', () => {
  it(`closes ${SOCKETS} sockets that never say hello by the hello deadline`, async () => {
    const dir = join(outputDir, 'sockets');
    const coordinator = await startCoordinatorProcess(outputDir, tinyJob(dir), {
      helloDeadlineMs: HELLO_DEADLINE_MS,
      // Room for all of them at once, so it is the deadline that closes each, not the caps (the unit tests cover those).
      maxPreHelloPerAddress: SOCKETS,
      maxPreHelloTotal: SOCKETS,
    });
    const before = rssBytes(coordinator.pid);
    const rss = watchRss(coordinator.pid, 50);
    const clients: { client: RawClient; openedAt: number }[] = [];
    for (let batch = 0; batch < SOCKETS; batch += 200) {
      clients.push(
        ...(await Promise.all(Array.from({ length: 200 }, async () => ({ client: await RawClient.connect(coordinator.wsUrl), openedAt: performance.now() })))),
      );
    }
    const closes = await Promise.all(clients.map(async ({ client, openedAt }) => ({ after: (await client.closed).at - openedAt, client })));
    const largest = await rss.stop();
    if (process.env.DOOR_DEBUG)
      console.log(
        `sockets: RSS MB before ${before / MB} peak ${largest.max / MB}; closed after ${Math.min(...closes.map(({ after }) => after))}-${Math.max(...closes.map(({ after }) => after))} ms`,
      );
    // The coordinator starts the deadline a moment before the client sees its socket open (more than a moment on a loaded machine).
    const early = closes.filter(({ after }) => after < HELLO_DEADLINE_MS / 2);
    const late = closes.filter(({ after }) => after > HELLO_DEADLINE_MS + DEADLINE_SLACK_MS);
    expect({ early: early.length, late: late.length }).toEqual({ early: 0, late: 0 });
    // Each was told why before it was closed.
    const told = closes.filter(({ client }) => client.messages.some((message) => message.type === 'reject' && message.code === ErrorCode.NotRegistered));
    expect(told).toHaveLength(SOCKETS);
    expect(largest.max - before).toBeLessThan(RSS_BOUND_BYTES);
    // The door is not jammed: a worker still joins.
    const worker = await joinAsWorker(coordinator.wsUrl);
    worker.client.close();
  });

  it(`keeps RSS within 100 MB under ${STREAMS} event streams that never read, and gives it back when they close`, async () => {
    const dir = join(outputDir, 'streams');
    const coordinator = await startCoordinatorProcess(outputDir, tinyJob(dir));
    // Rounds as fast as the coordinator closes them: every one is an event for every stream.
    const worker = await busyWorker(coordinator.wsUrl);
    await sleep(2_000);
    const before = rssBytes(coordinator.pid);
    const rss = watchRss(coordinator.pid, 50);
    const streams = await Promise.all(Array.from({ length: STREAMS }, () => stalledStream(coordinator, 'door')));
    await sleep(6_000);
    const during = await rss.stop();
    for (const stream of streams) stream.destroy();
    await sleep(3_000);
    const after = rssBytes(coordinator.pid);
    const rounds = await worker.stop();
    if (process.env.DOOR_DEBUG) console.log(`rounds ${rounds}, RSS MB before ${before / MB} peak ${during.max / MB} after ${after / MB}`);
    // Events did flow: many rounds for each stream to fall behind on.
    expect(rounds).toBeGreaterThan(100);
    expect(during.max - before).toBeLessThan(RSS_BOUND_BYTES);
    // Back near where it started once they are gone (V8 keeps some pages it used; what it held for the streams is freed).
    expect(after - before).toBeLessThan(RSS_BOUND_BYTES / 2);
  });
});
