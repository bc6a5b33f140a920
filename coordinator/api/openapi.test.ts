import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConfig, lintFromString, type NormalizedProblem } from '@redocly/openapi-core';
import { beforeAll, describe, expect, it } from 'vitest';
import type { QualityRow } from '../../shared/api/round-log.ts';
import { ErrorCode } from '../../shared/protocol/errors.ts';
import { keyMismatches } from '../../test/helpers/openapi-keys.ts';
import { createApp } from '../app.ts';
import { Hub } from '../hub.ts';
import type { AcceptedUpdate, RoundSummary } from '../job/round.ts';
import { roundRow } from '../round-log.ts';
import { testHub } from '../test-fixtures.ts';
import { describeWorker } from '../workers.ts';
import { describeJob } from './jobs.ts';
import { openApiDocument } from './openapi.ts';

/*
 * The API description as the coordinator serves it, under a real linter
 * (Redocly's recommended rules, what `redocly lint` runs by default), and
 * against the routes the app really has: a route someone adds is linted and
 * must be documented, whoever adds it.
 */

/** Warnings that stay, each for a reason; anything else the linter says fails the test. */
const ACCEPTED_WARNINGS: { ruleId: string; pointer: string; why: string }[] = [
  { ruleId: 'info-license', pointer: '#/info', why: 'the project declares no license (package.json is private)' },
  ...['/health', '/metrics', '/api/openapi.json'].map((path) => ({
    ruleId: 'operation-4xx-response',
    pointer: `#/paths/${path.replaceAll('/', '~1')}/get/responses`,
    why: 'takes no input and no token: it has no 4xx answer to document',
  })),
];

/** Served routes that are pages or static files for browsers, not API: every other route must be documented. */
const isApiRoute = (path: string) => path.startsWith('/api/') || path === '/health' || path === '/metrics';

let app: ReturnType<typeof createApp>;
let document: { paths: Record<string, Record<string, { operationId?: string; security?: unknown[] }>> };

beforeAll(async () => {
  app = createApp(new Hub({ defaultJobId: 'default', heartbeatMs: 10_000 }), {
    adminToken: 'unused',
    createJob: async () => Promise.reject(new Error('not in this test')),
  });
  document = await (await app.request('/api/openapi.json')).json();
});

describe('/api/openapi.json', () => {
  it("is clean under Redocly's recommended rules: no errors, only the accepted warnings", async () => {
    const config = await createConfig({ extends: ['recommended'] });
    const problems = await lintFromString({ source: JSON.stringify(document, null, 2), absoluteRef: '/api/openapi.json', config });
    const describe = (problem: NormalizedProblem) => `${problem.severity} ${problem.ruleId} ${problem.location[0]?.pointer}: ${problem.message}`;
    const errors = problems.filter((problem) => problem.severity === 'error');
    const warnings = problems.filter((problem) => problem.severity === 'warn');
    console.log(`redocly recommended: ${errors.length} errors, ${warnings.length} warnings`);
    expect(errors.map(describe)).toEqual([]);
    const unexpected = warnings.filter(
      (problem) => !ACCEPTED_WARNINGS.some((accepted) => accepted.ruleId === problem.ruleId && accepted.pointer === problem.location[0]?.pointer),
    );
    expect(unexpected.map(describe)).toEqual([]);
  });

  it('documents every API route the app serves, and serves every route it documents', () => {
    const served = new Set(
      app.routes.filter((route) => route.method !== 'ALL' && isApiRoute(route.path)).map((route) => `${route.method} ${route.path.replace(/:(\w+)/g, '{$1}')}`),
    );
    const documented = new Set(
      Object.entries(document.paths).flatMap(([path, operations]) => Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`)),
    );
    expect(
      [...served].filter((route) => !documented.has(route)),
      'served but not in coordinator/api/openapi.ts',
    ).toEqual([]);
    expect(
      [...documented].filter((route) => !served.has(route)),
      'documented but not served',
    ).toEqual([]);
  });

  it('gives every operation a unique operationId and a security requirement', () => {
    const operations = Object.values(document.paths).flatMap((methods) => Object.values(methods));
    const ids = operations.map((operation) => operation.operationId);
    expect(ids.every((id) => typeof id === 'string')).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    for (const operation of operations) expect(Array.isArray(operation.security), operation.operationId).toBe(true);
  });

  it('says a token is needed exactly where the app asks for one', async () => {
    // A coordinator with a read token: an operation documented as open must answer without one, the others must not.
    const guarded = createApp(new Hub({ defaultJobId: 'default', heartbeatMs: 10_000 }), {
      adminToken: 'admin',
      readToken: 'reader',
      createJob: async () => Promise.reject(new Error('not in this test')),
    });
    for (const [path, methods] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(methods)) {
        if (path.endsWith('/events')) continue; // a stream: its guard is checked by test/api.test.ts
        const concrete =
          path.replace('{id}', path.startsWith('/api/datasets') ? 'mnist' : 'default').replace('{file}', 'latest.png') +
          (path.endsWith('/examples') ? '?indices=1' : '');
        const response = await guarded.request(concrete, { method: method.toUpperCase() });
        const open = operation.security!.length === 0;
        expect(response.status === 401, `${method} ${path} answers 401 without a token`).toBe(!open);
      }
    }
  });
});

/** What the API sends, as a client reads it: JSON, so undefined keys are gone and Infinity is null. */
const asSent = (value: unknown) => JSON.parse(JSON.stringify(value)) as unknown;

describe('the document names what the API sends (the types in shared/api/ and the schemas agree)', () => {
  const update = (workerId: string, round: number): AcceptedUpdate => ({
    workerId,
    round,
    samples: 8,
    weight: 4,
    finishMs: 120,
    shardIds: [0, 1],
    workerTensors: 12,
    grads: {},
    losses: { g: 1, d: 0.5 },
    computeMs: 100,
    fetchMs: 5,
    bytes: 64,
    receivedAt: 0,
  });
  /** A round with one of everything a row can hold: an update, a late one, a failure, an exclusion, an outlier. */
  const summary: RoundSummary = {
    round: 3,
    version: 2,
    durationMs: 500,
    deadlineMs: 2000,
    updates: [update('a', 3)],
    late: [update('b', 2)],
    failures: [{ workerId: 'c', code: ErrorCode.NonFinite, message: 'a NaN' }],
    excluded: [{ workerId: 'd', reason: 'duplicate' }],
    samples: 12,
    losses: { g: 1, d: 0.5 },
    samplesPerSecond: 24,
    applied: true,
    outliers: [{ workerId: 'a', round: 3, networks: ['generator'], deviation: 1.5 }],
  };

  it('a round-log row (Round), with every part and an incomparable duplicate pair (distance null)', () => {
    const row = roundRow(summary, 0, [{ round: 3, original: 'a', copy: 'd', outcome: 'disputed', distance: Infinity, tensor: 'g_w' }]);
    expect(keyMismatches(openApiDocument, 'Round', asSent(row))).toEqual([]);
  });

  it('a quality line (Quality), with the optional figures of conditional models and autoencoders', () => {
    const row: QualityRow = {
      kind: 'quality',
      round: 3,
      version: 2,
      samplesSeen: 96,
      wallMs: 1000,
      closedAt: new Date(0).toISOString(),
      dataset: 'mnist',
      count: 100,
      frechet: 50,
      frechetFloor: 10,
      precision: 0.5,
      recall: 0.5,
      recognisable: 0.5,
      coverageEntropy: 0.9,
      labelAgreement: 0.5,
      cas: 0.5,
      reconstructionRecognisable: 0.5,
      reconstructionAgreement: 0.5,
      ms: 300,
    };
    expect(keyMismatches(openApiDocument, 'Quality', asSent(row))).toEqual([]);
  });

  it('a job (Job) and a worker row (Worker)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-openapi-'));
    try {
      const { runner } = testHub(dir);
      runner.history.push(roundRow(summary, 0));
      const worker = describeWorker({
        id: 'w1',
        jobId: 'unit',
        kind: 'browser',
        backend: 'webgpu',
        device: 'gpu',
        name: 'tab',
        channel: undefined,
        joinedAt: 0,
        lastSeenAt: 0,
        samplesPerSecond: 10,
        samplesContributed: 0,
        updatesAccepted: 0,
        updatesRejected: 0,
        bytesReceived: 0,
        weightFetches: 0,
      });
      expect(keyMismatches(openApiDocument, 'Job', asSent({ ...describeJob(runner), workers: [worker] }))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('catches a key the document does not name, and a required key not sent', () => {
    const row = asSent(roundRow(summary, 0)) as Record<string, unknown>;
    delete row.closedAt;
    expect(keyMismatches(openApiDocument, 'Round', { ...row, extra: 1 })).toEqual([
      '$.extra: sent, not in the document',
      '$.closedAt: required by the document, not sent',
    ]);
  });
});
