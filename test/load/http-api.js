/*
 * k6 version of http-api.ts: a constant rate of GET /health (every probe and
 * load balancer) and GET /api/jobs (the dashboard's poll).
 *
 *   k6 run -e BASE_URL=http://127.0.0.1:8080 -e RATE=500 -e DURATION=30s test/load/http-api.js
 *
 * Set TESSERA_READ_TOKEN when the coordinator requires a read token. Only
 * against a coordinator you run, on loopback or your own test hosts.
 */
import { check } from 'k6';
import http from 'k6/http';

const BASE_URL = __ENV.BASE_URL || 'http://127.0.0.1:8080';
const RATE = Number(__ENV.RATE || 500);
const DURATION = __ENV.DURATION || '30s';
const params = (route) => ({
  tags: { route },
  headers: __ENV.TESSERA_READ_TOKEN ? { Authorization: `Bearer ${__ENV.TESSERA_READ_TOKEN}` } : {},
});

const scenario = (exec) => ({ executor: 'constant-arrival-rate', exec, rate: RATE, timeUnit: '1s', duration: DURATION, preAllocatedVUs: 50, maxVUs: 500 });

export const options = {
  scenarios: { health: scenario('health'), jobs: scenario('jobs') },
  thresholds: {
    http_req_failed: ['rate==0'],
    'http_req_duration{route:health}': ['p(99)<50'],
    'http_req_duration{route:jobs}': ['p(99)<250'],
    dropped_iterations: ['count==0'],
  },
};

export function health() {
  const response = http.get(`${BASE_URL}/health`, params('health'));
  check(response, { 'health 200': (r) => r.status === 200 && r.json('ok') === true });
}

export function jobs() {
  const response = http.get(`${BASE_URL}/api/jobs`, params('jobs'));
  check(response, { 'jobs 200': (r) => r.status === 200 && Array.isArray(r.json('jobs')) });
}
