import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from './helpers/nats-server.ts';
import { startScript, stop, stopAll, until } from './helpers/processes.ts';

/**
 * The secrets of the command-line programs, as an operator meets them:
 * placeholders refused at start, a generated admin token saved (not
 * printed), and the worker token handed to local workers in their
 * environment, never on their command line.
 */

const outputDir = mkdtempSync(join(tmpdir(), 'tessera-cli-secrets-'));
const WORKER_TOKEN = 'cli-worker-token-5d1f0a9c3b7e';

afterAll(async () => {
  await stopAll();
  rmSync(outputDir, { recursive: true, force: true });
});

/** The processes whose parent is `pid`. */
function childrenOf(pid: number): number[] {
  try {
    return execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .map(Number)
      .filter((child) => child > 0);
  } catch {
    return [];
  }
}

describe('secrets of the coordinator and worker programs', () => {
  it("refuses the example files' placeholders at start, saying how to make real ones", async () => {
    const coordinator = startScript('coordinator/main.ts', ['--port', '0'], { TESSERA_WORKER_TOKEN: 'REPLACE-ME-openssl-rand-hex-24' });
    expect(await coordinator.exited).toBe(2);
    expect(coordinator.output()).toMatch(/TESSERA_WORKER_TOKEN is a placeholder.*openssl rand -hex 32/);
    // The worker program runs the same check (runtime/node/placeholder-secrets.ts, tested beside it).
  }, 60_000);

  it('saves a generated admin token (0600) and prints its path, not the token, and gives local workers the token by environment', async () => {
    const port = await freePort();
    const args = [
      '--port',
      String(port),
      '--host',
      '127.0.0.1',
      '--local-workers',
      '1',
      '--worker-backend',
      'wasm',
      '--set',
      `output.dir=${outputDir}`,
      '--set',
      'model.config.width=4',
      '--set',
      'model.config.latentDim=8',
    ];
    const env = { TESSERA_WORKER_TOKEN: WORKER_TOKEN };
    const first = startScript('coordinator/main.ts', args, { ...env });
    const [, path] = await first.waitFor(/admin token: in (\S+) /, 90_000);
    expect(path).toBe(join(outputDir, 'default', 'admin-token'));
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const adminToken = readFileSync(path, 'utf8').trim();
    expect(adminToken).toMatch(/^[0-9a-f]{64}$/);

    await first.waitFor(/worker \S+ joined/, 90_000);
    const [child] = await until(
      () => childrenOf(first.pid),
      (children) => children.length === 1,
      10_000,
      'the local worker process',
    );
    const commandLine = readFileSync(`/proc/${child}/cmdline`, 'utf8').split('\0');
    expect(commandLine.join(' ')).toMatch(/worker\/main\.ts/);
    expect(commandLine.join(' ')).not.toContain(WORKER_TOKEN);
    const environment = readFileSync(`/proc/${child}/environ`, 'utf8').split('\0');
    expect(environment).toContain(`TESSERA_WORKER_TOKEN=${WORKER_TOKEN}`);
    expect(environment.some((entry) => entry.startsWith('TESSERA_ADMIN_TOKEN='))).toBe(false);
    expect(first.output()).not.toContain(adminToken);
    // The admin token works in the header.
    const paused = await fetch(`http://127.0.0.1:${port}/api/jobs/default/pause`, { method: 'POST', headers: { authorization: `Bearer ${adminToken}` } });
    expect(paused.status).toBe(200);
    // A restart reads the same file (coordinator/secrets.test.ts).
    await stop(first);
  }, 120_000);
});
