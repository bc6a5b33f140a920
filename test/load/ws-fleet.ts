#!/usr/bin/env node
/**
 * A ramp of simulated WebSocket workers against a coordinator (see fleet.ts):
 *
 *   npx tsx test/load/ws-fleet.ts --url ws://127.0.0.1:8080/ws --workers 500 --ramp 10 --duration 30
 *
 * Start the coordinator with a small model so the fleet's updates are small
 * and the coordinator, not the tensors, is measured:
 *   npm run coordinator -- --port 8080 --set model.config.width=4 --set model.config.latentDim=8 \
 *     --set training.batchSize=1 --set training.verification.duplicateShare=0
 * Exits 1 when any update was rejected, any worker refused or any connection dropped.
 * Only against a coordinator you run, on loopback or your own test hosts.
 */
import { parseArgs } from 'node:util';
import { formatReport, runFleet } from './fleet.ts';

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: 'ws://127.0.0.1:8080/ws' },
    workers: { type: 'string', default: '500' },
    ramp: { type: 'string', default: '10' },
    duration: { type: 'string', default: '30' },
    'compute-ms': { type: 'string', default: '20' },
    token: { type: 'string', default: process.env.TESSERA_WORKER_TOKEN },
    job: { type: 'string' },
    'metrics-url': { type: 'string' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(
    'Usage: ws-fleet.ts [--url ws://HOST:PORT/ws] [--workers N] [--ramp SECONDS] [--duration SECONDS] [--compute-ms MS] [--token T] [--job ID] [--metrics-url URL] [--json]\n',
  );
  process.exit(0);
}
const seconds = (text: string, name: string) => {
  const value = Number(text);
  if (!(value >= 0)) throw new Error(`--${name} expects a number of seconds, got ${text}`);
  return value * 1000;
};

const report = await runFleet({
  url: values.url,
  workers: Number(values.workers),
  rampMs: seconds(values.ramp, 'ramp'),
  durationMs: seconds(values.duration, 'duration'),
  computeMs: Number(values['compute-ms']),
  token: values.token,
  jobId: values.job,
  metricsUrl: values['metrics-url'],
  log: (line) => process.stderr.write(`${line}\n`),
});
process.stdout.write(values.json ? `${JSON.stringify(report)}\n` : `${formatReport(report).join('\n')}\n`);
const rejected = Object.values(report.rejects).reduce((a, b) => a + b, 0);
process.exit(rejected > 0 || report.refused > 0 || report.dropped > 0 || report.joined < report.workers ? 1 : 0);
