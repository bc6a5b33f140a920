#!/usr/bin/env node
/**
 * HTTP load on the coordinator's read routes with autocannon: GET /health
 * (what every probe and load balancer hits) and GET /api/jobs (what the
 * dashboard polls), one after the other.
 *
 *   npx tsx test/load/http-api.ts --url http://127.0.0.1:8080 --connections 50 --duration 10
 *
 * Set TESSERA_READ_TOKEN (or --token) when the coordinator requires a read token.
 * Exits 1 on any error or non-2xx answer. Only against a coordinator you run.
 */
import autocannon from 'autocannon';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

export const ROUTES = ['/health', '/api/jobs'] as const;

export interface RouteLoad {
  path: string;
  requestsPerSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  requests: number;
  non2xx: number;
  errors: number;
  timeouts: number;
}

/** Hammers each route for `durationSeconds` with `connections` keep-alive connections. */
export async function loadRoutes(baseUrl: string, options: { connections: number; durationSeconds: number; token?: string }): Promise<RouteLoad[]> {
  const results: RouteLoad[] = [];
  for (const path of ROUTES) {
    const result = await autocannon({
      url: `${baseUrl.replace(/\/$/, '')}${path}`,
      connections: options.connections,
      duration: options.durationSeconds,
      headers: options.token ? { authorization: `Bearer ${options.token}` } : undefined,
    });
    results.push({
      path,
      requestsPerSecond: result.requests.average,
      latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max },
      requests: result.requests.total,
      non2xx: result.non2xx,
      errors: result.errors,
      timeouts: result.timeouts,
    });
  }
  return results;
}

/** One line per route. */
export function formatRouteLoad(results: readonly RouteLoad[]): string[] {
  return results.map(
    (result) =>
      `GET ${result.path.padEnd(10)} ${result.requestsPerSecond.toFixed(0).padStart(6)} req/s  latency p50 ${result.latencyMs.p50} ms, p90 ${result.latencyMs.p90} ms, p99 ${result.latencyMs.p99} ms, max ${result.latencyMs.max} ms` +
      `  (${result.requests} requests, ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts)`,
  );
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      url: { type: 'string', default: 'http://127.0.0.1:8080' },
      connections: { type: 'string', default: '50' },
      duration: { type: 'string', default: '10' },
      token: { type: 'string', default: process.env.TESSERA_READ_TOKEN },
    },
  });
  const results = await loadRoutes(values.url, { connections: Number(values.connections), durationSeconds: Number(values.duration), token: values.token });
  process.stdout.write(`${formatRouteLoad(results).join('\n')}\n`);
  process.exit(results.some((result) => result.errors > 0 || result.non2xx > 0) ? 1 : 0);
}
