#!/usr/bin/env node
/**
 * A worker that computes honestly but lies about its speed: it says hello with
 * samplesPerSecond 1e300 and reports every update as computed in 0 ms, with a
 * weights fetch of 1e9 ms (the most transfer it could ask to be excused for).
 * The real WorkerClient does the work; only the claims on the wire change.
 * It prints its true compute time per round, so a test can tell its real speed.
 *
 * Usage: node --import tsx test/helpers/liar-worker.ts --url ws://HOST:PORT/ws
 */
import { parseArgs } from 'node:util';
import { pack, unpack } from '../../shared/codec/packr.ts';
import { loadMnist } from '../../shared/data/mnist.ts';
import { WorkerClient } from '../../shared/worker/client.ts';
import { selectNodeBackend } from '../../runtime/node/backend.ts';
import { nodeWebSocketTransport } from '../../runtime/node/websocket.ts';
import { rewritingTransport } from './rewriting-transport.ts';

const { values } = parseArgs({ options: { url: { type: 'string' }, name: { type: 'string', default: 'liar' } } });
if (!values.url) throw new Error('--url is required');

/** Rewrites the claims of outgoing hello and update messages; everything else passes through. */
function lie(bytes: Uint8Array): Uint8Array {
  const message = unpack(bytes) as Record<string, unknown>;
  if (message.type === 'hello') return pack({ ...message, samplesPerSecond: 1e300 });
  if (message.type === 'update') return pack({ ...message, timing: { computeMs: 0, fetchMs: 1e9 } });
  return bytes;
}

const backend = await selectNodeBackend('wasm');
const client = new WorkerClient({
  kind: 'node',
  backend: backend.name,
  device: backend.device,
  name: values.name,
  // A WebSocket whose sends lie; the client sees an ordinary connection.
  transport: rewritingTransport(nodeWebSocketTransport(values.url), lie),
  loadBatch: (_datasetId, indices) => loadMnist().batch(indices),
  onEvent: (event) => {
    if (event.type === 'connected') process.stdout.write(`[liar] joined job ${event.jobId} as ${event.workerId}\n`);
    // The truth, for the test: the compute time the liar did not report.
    if (event.type === 'update') process.stdout.write(`[liar] round ${event.round}: ${event.samples} samples in ${event.computeMs.toFixed(1)} ms\n`);
  },
});
process.on('SIGTERM', () => void client.stop('SIGTERM'));
client.start();
await client.done;
setTimeout(() => process.exit(), 100);
