#!/usr/bin/env node
/*
 * Health check of a Tessera worker container (Docker HEALTHCHECK, Kubernetes
 * exec liveness probe). The worker serves no port, so this checks what a
 * working worker has: an ESTABLISHED TCP connection to the coordinator
 * (TESSERA_URL) or to NATS (TESSERA_NATS_URL). A worker whose event loop hangs
 * stops answering pings and is cut off by the other side within about a
 * minute (the coordinator's WebSocket pings; NATS's ping_interval x ping_max),
 * and its socket leaves ESTABLISHED. A worker between reconnect attempts
 * fails too, so give the probe retries: the worker's backoff is capped at 10 s.
 *
 *   node deploy/worker-health.mjs [PORT...]
 *
 * With no ports given they come from the URLs (default ports: ws 80, wss 443,
 * nats 4222), else 8080 and 4222. Reads /proc/net/tcp{,6} of the container's
 * network namespace: plain JavaScript, no dependencies, no tsx start-up cost.
 */
import { readFileSync } from 'node:fs';

const DEFAULT_PORTS = { 'ws:': 80, 'wss:': 443, 'http:': 80, 'https:': 443, 'nats:': 4222, 'tls:': 4222 };
/** The TCP state column of /proc/net/tcp: 01 is ESTABLISHED. */
const ESTABLISHED = '01';

function expectedPorts() {
  const given = process.argv
    .slice(2)
    .map(Number)
    .filter((port) => Number.isInteger(port) && port > 0);
  if (given.length > 0) return given;
  const urls = [process.env.TESSERA_URL, ...(process.env.TESSERA_NATS_URL ?? '').split(',')].map((url) => url?.trim()).filter(Boolean);
  const ports = [];
  for (const text of urls) {
    try {
      const url = new URL(text.includes('://') ? text : `nats://${text}`);
      ports.push(url.port ? Number(url.port) : (DEFAULT_PORTS[url.protocol] ?? 0));
    } catch {
      /* an unparsable URL: the worker itself reports it */
    }
  }
  return ports.length > 0 ? ports : [8080, 4222];
}

/** Remote ports of the established TCP connections in this network namespace. */
function establishedRemotePorts() {
  const ports = new Set();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st ...; addresses are HEX_IP:HEX_PORT
      const fields = line.trim().split(/\s+/);
      if (fields.length > 3 && fields[3] === ESTABLISHED) ports.add(Number.parseInt(fields[2].split(':')[1], 16));
    }
  }
  return ports;
}

const wanted = expectedPorts();
const open = establishedRemotePorts();
const connected = wanted.filter((port) => open.has(port));
if (connected.length > 0) {
  process.stdout.write(`healthy: connected to port ${connected.join(', ')}\n`);
  process.exit(0);
}
process.stdout.write(`unhealthy: no established connection to port ${wanted.join(' or ')}\n`);
process.exit(1);
