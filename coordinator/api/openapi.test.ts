import { createConfig, lintFromString, type NormalizedProblem } from '@redocly/openapi-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../app.ts';
import { Hub } from '../hub.ts';

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
