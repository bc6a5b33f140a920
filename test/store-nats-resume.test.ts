import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CHECKPOINT_FILE } from '../coordinator/checkpoint.ts';
import { parseRoundLog, ROUND_LOG } from '../coordinator/round-log.ts';
import { connectJetStreamStores, type JetStreamStores } from '../coordinator/store/jetstream-stores.ts';
import type { JobStore } from '../coordinator/store/job-store.ts';
import { freePort, NatsServer } from './helpers/nats-server.ts';
import { signal, startScript, stopAll, until } from './helpers/processes.ts';

/**
 * `--store nats` end to end: a coordinator keeps its job in JetStream (one
 * nats-server with -js), is killed with SIGKILL, and a new one resumes from
 * the checkpoint in the Object Store while the WebSocket worker rejoins by
 * itself. The job's folder gets no checkpoint and no round log.
 */

const root = mkdtempSync(join(tmpdir(), 'tessera-store-nats-'));
const outputDir = join(root, 'runs');
let nats: NatsServer | undefined;
let stores: JetStreamStores | undefined;

afterAll(async () => {
  await stopAll();
  await stores?.close();
  await nats?.stop();
  rmSync(root, { recursive: true, force: true });
}, 30_000);

const startCoordinator = (port: number) =>
  startScript('coordinator/main.ts', [
    '--port',
    String(port),
    '--host',
    '127.0.0.1',
    '--store',
    'nats',
    '--nats',
    nats!.url,
    ...['model.config.width=8', 'model.config.latentDim=16', 'training.batchSize=8', 'output.checkpointEvery=5', 'output.evalEvery=0']
      .concat(['training.verification.duplicateShare=0', `output.dir=${outputDir}`])
      .flatMap((setting) => ['--set', setting]),
  ]);

async function roundsIn(store: JobStore): Promise<{ round: number; version: number }[]> {
  return parseRoundLog((await store.readRounds()).join('\n')).rounds;
}

describe('--store nats', () => {
  it('a coordinator killed with SIGKILL resumes from its checkpoint in JetStream; every round is logged once', async () => {
    nats = new NatsServer(await freePort(), ['-js', '-sd', join(root, 'jetstream')]);
    await nats.start();
    const port = await freePort();
    const first = startCoordinator(port);
    await first.waitFor(/job state in JetStream: checkpoint in nats object store tessera-checkpoints-default\/checkpoint/);
    const worker = startScript('worker/main.ts', ['--url', `ws://127.0.0.1:${port}/ws`, '--backend', 'wasm', '--name', 'one']);
    stores = await connectJetStreamStores({ servers: [nats.url] });
    const store = await stores.open('default', '');
    await until(
      () => roundsIn(store),
      (rounds) => rounds.length >= 12,
      90_000,
      'twelve rounds in the stream',
    );
    signal(first, 'SIGKILL');
    await first.exited;
    const loggedBeforeCrash = (await roundsIn(store)).length;

    const restarted = startCoordinator(port);
    const resumedAt = Number((await restarted.waitFor(/resumed at round (\d+)/))[1]);
    expect(resumedAt).toBeGreaterThanOrEqual(5);
    expect(resumedAt % 5).toBe(0);
    expect(resumedAt).toBeLessThanOrEqual(loggedBeforeCrash);
    const rounds = await until(
      () => roundsIn(store),
      (lines) => lines.length >= loggedBeforeCrash + 3,
      60_000,
      'rounds after the restart',
    );
    // The same worker process, back by itself; the rounds past the checkpoint were redone and are logged once.
    expect(worker.child.exitCode).toBeNull();
    expect(rounds.map((line) => line.round)).toEqual(rounds.map((_, index) => index));
    expect(rounds.map((line) => line.version)).toEqual(rounds.map((_, index) => index));
    const status = await store.getStatus();
    expect(status?.config.id).toBe('default');
    expect(status?.checkpoint?.round).toBeGreaterThanOrEqual(resumedAt);
    // State went to JetStream, not to the folder (which still gets the samples).
    expect(existsSync(join(outputDir, 'default', CHECKPOINT_FILE))).toBe(false);
    expect(existsSync(join(outputDir, 'default', ROUND_LOG))).toBe(false);
  }, 150_000);
});
