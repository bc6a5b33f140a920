import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, nkeyAuthenticator } from 'nats';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSeeds } from '../coordinator/nats-identities.ts';
import { connectJetStreamStores } from '../coordinator/store/jetstream-stores.ts';
import { writeNatsUsers } from '../deploy/nats-users.ts';
import { NATS_PASS, NATS_USER } from './helpers/nats-conf.ts';
import { freePort, NATS_SERVER } from './helpers/nats-server.ts';
import { ROOT } from './helpers/processes.ts';

/**
 * Three real nats-servers on deploy/nats-cluster.conf as it is (copied beside
 * deploy/nats.conf, which it includes, and the users deploy/nats-users.ts
 * generates). Only the addresses change, by flags: loopback ports instead of
 * 4222/8222/6222 and routes to them instead of the pods' names. The cluster
 * must elect a JetStream meta leader over three peers with the config's
 * limits, and the coordinator's user must be allowed what `--store nats` does
 * while a worker's is not.
 */

const SERVERS = 3;
let dir = '';
const children: ChildProcess[] = [];
const monitorPorts: number[] = [];
const clientUrls: string[] = [];
let workerSeed = '';

async function jsz(
  port: number,
): Promise<{ config: { max_storage: number; max_memory: number }; meta_cluster?: { name: string; leader?: string; cluster_size: number } }> {
  return (await (await fetch(`http://127.0.0.1:${port}/jsz`)).json()) as never;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-nats-cluster-conf-'));
  copyFileSync(join(ROOT, 'deploy/nats.conf'), join(dir, 'nats.conf'));
  copyFileSync(join(ROOT, 'deploy/nats-cluster.conf'), join(dir, 'nats-cluster.conf'));
  const { seedsPath } = writeNatsUsers(join(dir, 'nats-users'), 1);
  workerSeed = parseSeeds(readFileSync(seedsPath, 'utf8'))[0];
  const ports = await Promise.all(Array.from({ length: SERVERS * 3 }, () => freePort()));
  const routePorts = ports.slice(2 * SERVERS);
  const routes = routePorts.map((port) => `nats://127.0.0.1:${port}`).join(',');
  for (let i = 0; i < SERVERS; i++) {
    const [client, monitor] = [ports[i], ports[SERVERS + i]];
    monitorPorts.push(monitor);
    clientUrls.push(`nats://127.0.0.1:${client}`);
    const args = ['-c', join(dir, 'nats-cluster.conf'), '-a', '127.0.0.1', '-p', String(client), '-m', String(monitor)];
    args.push('--cluster', `nats://127.0.0.1:${routePorts[i]}`, '--routes', routes);
    const env = { ...process.env, TESSERA_NATS_USER: NATS_USER, TESSERA_NATS_PASS: NATS_PASS };
    Object.assign(env, { TESSERA_NATS_SERVER_NAME: `nats-${i}`, TESSERA_NATS_STORE_DIR: join(dir, `store-${i}`) });
    children.push(spawn(NATS_SERVER, args, { env, stdio: 'ignore' }));
  }
  // Elected once every server sees a leader in a cluster of three.
  const deadline = Date.now() + 20_000;
  for (;;) {
    const states = await Promise.all(monitorPorts.map((port) => jsz(port).catch(() => undefined)));
    if (states.every((state) => state?.meta_cluster?.leader && state.meta_cluster.cluster_size === SERVERS)) break;
    if (Date.now() > deadline) throw new Error(`no JetStream meta leader over ${SERVERS} servers within 20 s: ${JSON.stringify(states)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}, 30_000);

afterAll(async () => {
  await Promise.all(
    children.map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }),
  );
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('deploy/nats-cluster.conf on three real nats-servers', () => {
  it('forms one cluster, named tessera, with JetStream on every server and the limits the config sets', async () => {
    for (const port of monitorPorts) {
      const state = await jsz(port);
      expect(state.meta_cluster).toMatchObject({ name: 'tessera', cluster_size: 3 });
      expect(state.config).toMatchObject({ max_storage: 20 * 1024 ** 3, max_memory: 256 * 1024 ** 2 });
    }
    const varz = (await (await fetch(`http://127.0.0.1:${monitorPorts[1]}/varz`)).json()) as { server_name: string; max_payload: number };
    // nats.conf's settings hold: the name from the environment, the 1 MB payload Tessera chunks under.
    expect(varz).toMatchObject({ server_name: 'nats-1', max_payload: 1024 * 1024 });
  });

  it("lets the coordinator's user keep a job in JetStream with three replicas", async () => {
    const stores = await connectJetStreamStores({ servers: clientUrls, user: NATS_USER, pass: NATS_PASS }, { limits: { maxCheckpointBytes: 4 * 1024 * 1024 } });
    try {
      expect(stores.replicas).toBe(3);
      const store = await stores.open('cluster-conf', dir);
      const bytes = new Uint8Array(1_500_000).map((_, i) => (i * 7) % 251);
      await store.saveCheckpoint(bytes);
      expect(await store.loadCheckpoint()).toEqual(bytes);
      await store.appendRounds(['{"round":0}', '{"round":1}']);
      expect(await store.readRounds()).toEqual(['{"round":0}', '{"round":1}']);
      await store.close();
    } finally {
      await stores.close();
    }
  });

  it("refuses a worker's identity the JetStream API", async () => {
    const connection = await connect({ servers: clientUrls[0], authenticator: nkeyAuthenticator(new TextEncoder().encode(workerSeed)), reconnect: false });
    try {
      await expect(connection.jetstreamManager({ timeout: 2_000 }).then((manager) => manager.getAccountInfo())).rejects.toThrow(/permission|timeout/i);
    } finally {
      await connection.close();
    }
  });
});

describe('deploy/compose.cluster.yaml', () => {
  const compose = parse(readFileSync(join(ROOT, 'deploy/compose.cluster.yaml'), 'utf8'), { merge: true }) as { services: Record<string, any> };
  const conf = readFileSync(join(ROOT, 'deploy/nats-cluster.conf'), 'utf8');

  it('runs three servers on nats-cluster.conf, named and stored as it expects, reachable at the names its routes dial', () => {
    for (let i = 0; i < 3; i++) {
      const server = compose.services[`nats-${i}`];
      expect(server.command).toEqual(['--config', '/etc/nats/nats-cluster.conf']);
      expect(server.environment).toMatchObject({ TESSERA_NATS_SERVER_NAME: `nats-${i}`, TESSERA_NATS_STORE_DIR: '/data/jetstream' });
      expect(server.volumes).toContain(`jetstream-${i}:/data`);
      for (const alias of server.networks.default.aliases) expect(conf).toContain(`nats-route://${alias}:6222`);
    }
  });

  it('points the coordinator (on --store nats), the aggregators and the workers at all three', () => {
    const urls = 'nats://nats-0:4222,nats://nats-1:4222,nats://nats-2:4222';
    expect(compose.services.coordinator.command).toEqual(['--store', 'nats']);
    expect(compose.services.aggregator.entrypoint).toEqual(['node', '--import', 'tsx', 'aggregator/main.ts']);
    for (const name of ['coordinator', 'aggregator', 'worker']) expect(compose.services[name].environment.TESSERA_NATS_URL).toBe(urls);
  });
});
