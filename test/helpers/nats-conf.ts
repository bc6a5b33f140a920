import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSeeds } from '../../coordinator/nats-identities.ts';
import { publicKeyOf, writeNatsUsers } from '../../deploy/nats-users.ts';
import { freePort, NATS_SERVER } from './nats-server.ts';
import { ROOT } from './processes.ts';

/** The coordinator's NATS credentials in these tests (a letter prefix: deploy/nats.conf says why). */
export const NATS_USER = 'tessera';
export const NATS_PASS = 'tessera-test-3f9a1c0b7d2e';

/** A nats-server running the project's deploy/nats.conf with a generated pool of worker identities. */
export interface ConfiguredNats {
  url: string;
  clientPort: number;
  monitorPort: number;
  /** The pool's identities: seed and public key (the worker's connection id). */
  workers: { seed: string; id: string }[];
  /** The seeds file the coordinator lends from. */
  seedsPath: string;
  stop(): Promise<void>;
}

/**
 * Starts the real nats-server on deploy/nats.conf as it is (copied, with the
 * users deploy/nats-users.ts generates in nats-users/ beside it), the
 * coordinator's credentials in its environment, on free ports; stopped by PID.
 */
export async function startConfiguredNats(workerCount: number): Promise<ConfiguredNats> {
  const [clientPort, monitorPort] = [await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), 'tessera-nats-conf-'));
  copyFileSync(join(ROOT, 'deploy/nats.conf'), join(dir, 'nats.conf'));
  const { seedsPath } = writeNatsUsers(join(dir, 'nats-users'), workerCount);
  const workers = parseSeeds(readFileSync(seedsPath, 'utf8')).map((seed) => ({ seed, id: publicKeyOf(seed) }));
  const child = spawn(NATS_SERVER, ['-c', join(dir, 'nats.conf'), '-a', '127.0.0.1', '-p', String(clientPort), '-m', String(monitorPort)], {
    env: { ...process.env, TESSERA_NATS_USER: NATS_USER, TESSERA_NATS_PASS: NATS_PASS },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Server is ready')) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then(() => reject(new Error(`nats-server exited before it was ready:\n${output}`)));
    setTimeout(() => reject(new Error(`nats-server not ready after 5 s:\n${output}`)), 5_000).unref();
  });
  return {
    url: `nats://127.0.0.1:${clientPort}`,
    clientPort,
    monitorPort,
    workers,
    seedsPath,
    async stop() {
      child.kill('SIGKILL');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
