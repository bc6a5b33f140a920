import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sessionAuthorization } from '../shared/protocol/session-auth.ts';
import { freePort } from './helpers/nats-server.ts';
import { startScript, stopAll, type Started } from './helpers/processes.ts';
import { RawWorker } from './helpers/raw-worker.ts';

/**
 * The examples route against clients that never read (a child-process
 * coordinator, its RSS read from /proc): the issue measured 100 such clients
 * pushing RSS from 650 to 1,349 MB for good, each 15 kB request answered with
 * 9.4 MB. Now a request without a session's credential is refused in a few
 * bytes, and one with it gets at most the worker's own batch.
 */

const CLIENTS = 100;
/** Requests each client pipelines on its connection without reading a byte. */
const REQUESTS_PER_CLIENT = 20;
const MB = 1024 * 1024;
const outputDir = mkdtempSync(join(tmpdir(), 'tessera-exhaustion-'));
let coordinator: Started;
let port = 0;

/** The resident set of a process, from /proc (Linux). */
function rssOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((entry) => entry.startsWith('VmRSS:'))!;
  return Number(line.split(/\s+/)[1]) * 1024;
}

/** Connects a client that writes requests and never reads: what it is sent piles up in buffers on the server's side. */
async function nonReadingClient(requests: string[]): Promise<Socket> {
  const socket = connect({ port, host: '127.0.0.1' });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.pause();
  socket.on('error', () => undefined);
  socket.write(requests.join(''));
  return socket;
}

const request = (path: string, authorization?: string) =>
  `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${authorization ? `Authorization: ${authorization}\r\n` : ''}Connection: keep-alive\r\n\r\n`;

beforeAll(async () => {
  port = await freePort();
  coordinator = startScript('coordinator/main.ts', [
    '--port',
    String(port),
    '--host',
    '127.0.0.1',
    '--set',
    `output.dir=${outputDir}`,
    '--set',
    'model.config.width=4',
    '--set',
    'model.config.latentDim=8',
    // One round stays open for the whole test: the worker never sends its update.
    '--set',
    'training.deadline=fixed',
    '--set',
    'training.roundDeadlineMs=600000',
  ]);
  await coordinator.waitFor(/tessera coordinator on/, 90_000);
}, 120_000);

afterAll(async () => {
  await stopAll();
  rmSync(outputDir, { recursive: true, force: true });
});

describe('dataset examples against clients that never read', () => {
  it(`${CLIENTS} authorised and ${CLIENTS} anonymous non-reading clients leave RSS within 100 MB, and it comes back when they close`, async () => {
    const worker = new RawWorker(`ws://127.0.0.1:${port}/ws`);
    await worker.hello({ kind: 'browser' });
    const welcome = await worker.next('welcome');
    const assign = await worker.next('assign');
    const authorization = sessionAuthorization(welcome.workerId, welcome.dataToken);
    const batchPath = `/api/datasets/mnist/examples?indices=${assign.sampleIndices.join(',')}`;
    // Warm the route (and its lazily built pieces) before measuring.
    const warm = await fetch(`http://127.0.0.1:${port}${batchPath}`, { headers: { authorization } });
    expect(warm.status).toBe(200);
    const batchBytes = (await warm.arrayBuffer()).byteLength;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const before = rssOf(coordinator.pid);

    // The worker's own batch, over and over; and the issue's attack: as many indices as a URL holds, with no credential.
    const greedy = `/api/datasets/mnist/examples?indices=${Array.from({ length: 2_000 }, (_, index) => index).join(',')}`;
    const sockets = [
      ...(await Promise.all(Array.from({ length: CLIENTS }, () => nonReadingClient(Array(REQUESTS_PER_CLIENT).fill(request(batchPath, authorization)))))),
      ...(await Promise.all(Array.from({ length: CLIENTS }, () => nonReadingClient(Array(REQUESTS_PER_CLIENT).fill(request(greedy)))))),
    ];
    let peak = before;
    let slowestHealthMs = 0;
    for (let i = 0; i < 15; i++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      peak = Math.max(peak, rssOf(coordinator.pid));
      const started = performance.now();
      expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
      slowestHealthMs = Math.max(slowestHealthMs, performance.now() - started);
    }
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const after = rssOf(coordinator.pid);
    console.log(
      `examples, ${CLIENTS}+${CLIENTS} non-reading clients x ${REQUESTS_PER_CLIENT} requests (batch ${assign.sampleIndices.length} = ${(batchBytes / 1024).toFixed(0)} kB): RSS ${(before / MB).toFixed(0)} MB -> peak ${(peak / MB).toFixed(0)} MB -> ${(after / MB).toFixed(0)} MB after close; slowest /health ${slowestHealthMs.toFixed(0)} ms`,
    );
    expect(peak - before).toBeLessThan(100 * MB);
    expect(after - before).toBeLessThan(100 * MB);
    worker.close();
  }, 60_000);
});
