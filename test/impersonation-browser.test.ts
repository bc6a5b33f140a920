import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TabStatus } from '../browser-worker/messages.ts';
import { startCoordinator, type Coordinator } from '../coordinator/server.ts';
import { selectNodeBackend } from '../runtime/node/backend.ts';
import { launchChromium } from './helpers/browser.ts';
import { until } from './helpers/processes.ts';

/**
 * A browser tab on a coordinator that needs a credential (real Chromium): the
 * bare join page is refused, a join link lets the tab in, pause and resume
 * keep its worker id (the tab resumes with its secret), and revoking the link
 * puts it out.
 */

const ADMIN = 'browser-identity-admin';
const outputDir = mkdtempSync(join(tmpdir(), 'tessera-browser-identity-'));
let coordinator: Coordinator;
let browser: Awaited<ReturnType<typeof launchChromium>>;

const statusOf = (page: Page) => page.evaluate(() => (globalThis as unknown as { tessera: { status(): TabStatus | undefined } }).tessera.status());
const admin = (method: string, path: string, body?: unknown) =>
  fetch(`${coordinator.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

beforeAll(async () => {
  await selectNodeBackend('wasm');
  coordinator = await startCoordinator({
    port: 0,
    host: '127.0.0.1',
    adminToken: ADMIN,
    workerToken: 'browser-identity-worker-token',
    job: {
      id: 'default',
      model: { config: { width: 4, latentDim: 8 } },
      training: { batchSize: 4, deadline: 'fixed', roundDeadlineMs: 60_000 },
      output: { dir: outputDir },
    },
  });
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await coordinator?.close();
  rmSync(outputDir, { recursive: true, force: true });
});

describe('browser tab identity', () => {
  it('is refused without a credential, joins with a join link, keeps its id across pause and resume, and is put out when the link is revoked', async () => {
    const bare = await browser.context.newPage();
    await bare.goto(`${coordinator.url}/join?backend=wasm`);
    const refused = await until(
      () => statusOf(bare),
      (status) => status?.state === 'refused',
      60_000,
      'the bare page refused',
    );
    expect(refused!.message).toMatch(/needs an invitation/);
    await bare.close();

    const issued = await (await admin('POST', '/api/jobs/default/join-tokens', { label: 'browser' })).json();
    const page = await browser.context.newPage();
    await page.goto(`${issued.url}&backend=wasm`);
    const joined = await until(
      () => statusOf(page),
      (status) => (status?.updatesAccepted ?? 0) >= 1,
      120_000,
      'the tab with an accepted update',
    );
    expect(joined).toMatchObject({ state: 'training', updatesRejected: 0 });
    const { workerId } = joined!;

    await page.click('#toggle');
    await until(
      () => statusOf(page),
      (status) => status?.state === 'paused',
      30_000,
      'the tab paused',
    );
    await until(
      () => coordinator.hub.sessions.get(workerId)?.channel,
      (channel) => channel === undefined,
      10_000,
      'the session without a connection',
    );
    const accepted = (await statusOf(page))!.updatesAccepted;
    await page.click('#toggle');
    const resumed = await until(
      () => statusOf(page),
      (status) => status?.state === 'training' && status.updatesAccepted > accepted,
      120_000,
      'the tab training again',
    );
    expect(resumed!.workerId).toBe(workerId);
    expect(coordinator.hub.sessions.get(workerId)?.updatesAccepted).toBeGreaterThan(accepted);

    const revoked = await (await admin('DELETE', `/api/jobs/default/join-tokens/${issued.id}`)).json();
    expect(revoked.disconnected).toBe(1);
    const out = await until(
      () => statusOf(page),
      (status) => status?.state === 'refused',
      30_000,
      'the tab put out',
    );
    expect(out!.message).toMatch(/revoked/);
  }, 300_000);
});
