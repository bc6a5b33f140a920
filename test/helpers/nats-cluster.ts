import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'nats';
import { freePort, NATS_SERVER } from './nats-server.ts';

/** How long a cluster may take to elect its JetStream meta leader (three servers on a loaded 2-core machine). */
const META_LEADER_TIMEOUT_MS = 20_000;

interface Member {
  name: string;
  clientPort: number;
  child: ChildProcess | undefined;
  output: string;
}

/**
 * A real cluster of nats-server processes (Debian's) with JetStream on
 * loopback, each with its own temporary config file and store folder.
 *
 *   const cluster = new NatsCluster();
 *   await cluster.start();   // resolves once JetStream has a meta leader
 *   connect({ servers: cluster.urls });
 *   await cluster.kill(0);   // kill -9 of one server, by PID
 *   await cluster.stop();    // kill -9 of the rest, temp folders removed
 *
 * Processes are started and stopped by PID only.
 */
export class NatsCluster {
  private readonly members: Member[] = [];
  private dir: string | undefined;

  constructor(readonly size = 3) {}

  /** The client URLs, one per server, in start order (also those of killed servers). */
  get urls(): string[] {
    return this.members.map((member) => `nats://127.0.0.1:${member.clientPort}`);
  }

  /** The servers' PIDs, undefined for a killed one. */
  get pids(): (number | undefined)[] {
    return this.members.map((member) => member.child?.pid);
  }

  /** What each server printed so far (for a failing test's message). */
  output(i: number): string {
    return this.members[i]?.output ?? '';
  }

  /** Starts every server and waits until JetStream answers (its meta leader is elected). */
  async start(): Promise<void> {
    this.dir = mkdtempSync(join(tmpdir(), 'tessera-nats-cluster-'));
    const routePorts: number[] = [];
    for (let i = 0; i < this.size; i++) {
      this.members.push({ name: `n${i + 1}`, clientPort: await freePort(), child: undefined, output: '' });
      routePorts.push(await freePort());
    }
    const routes = routePorts.map((port) => `nats-route://127.0.0.1:${port}`);
    this.members.forEach((member, i) => {
      const config = join(this.dir!, `${member.name}.conf`);
      writeFileSync(
        config,
        [
          `server_name: ${member.name}`,
          `listen: 127.0.0.1:${member.clientPort}`,
          `jetstream { store_dir: ${JSON.stringify(join(this.dir!, member.name))} }`,
          `cluster { name: tessera-test, listen: 127.0.0.1:${routePorts[i]}, routes: [${routes.join(', ')}] }`,
        ].join('\n'),
      );
      const child = spawn(NATS_SERVER, ['-js', '-c', config], { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout!.on('data', (chunk) => (member.output += chunk));
      child.stderr!.on('data', (chunk) => (member.output += chunk));
      member.child = child;
    });
    await this.waitForJetStream();
  }

  /** kill -9 of server i, by PID: a crash, not a shutdown. Resolves once it has exited. */
  async kill(i: number): Promise<void> {
    const member = this.members[i];
    const child = member?.child;
    if (!child) return;
    member.child = undefined;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    process.kill(child.pid!, 'SIGKILL');
    await exited;
  }

  /** Kills every server still running and removes the config and store folders. */
  async stop(): Promise<void> {
    await Promise.all(this.members.map((_, i) => this.kill(i)));
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    this.dir = undefined;
  }

  private async waitForJetStream(): Promise<void> {
    const deadline = Date.now() + META_LEADER_TIMEOUT_MS;
    let last: unknown;
    while (Date.now() < deadline) {
      try {
        const nc = await connect({ servers: this.urls, timeout: 1_000 });
        try {
          const jsm = await nc.jetstreamManager({ timeout: 1_000 });
          await jsm.getAccountInfo();
          return;
        } finally {
          await nc.close();
        }
      } catch (error) {
        last = error;
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const outputs = this.members.map((member) => `${member.name}:\n${member.output.slice(-1500)}`).join('\n');
    throw new Error(`the NATS cluster had no JetStream meta leader within ${META_LEADER_TIMEOUT_MS} ms (last: ${String(last)})\n${outputs}`);
  }
}
