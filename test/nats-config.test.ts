import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { connect, type NatsConnection, type NatsError } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isChunk, Reassembler, splitMessage } from '../shared/codec/chunking.ts';
import { mulberry32, randomBytes } from '../shared/codec/test-utils.ts';
import { ErrorCode } from '../shared/protocol/errors.ts';
import { subjects } from '../shared/protocol/subjects.ts';
import { natsError } from '../worker/nats.ts';
import { ROOT } from './helpers/processes.ts';

/**
 * Runs the real nats-server on deploy/nats.conf (on free ports, which -p and
 * -m override) and checks the settings the config promises: credentials from
 * the environment, the 1 MB payload limit Tessera chunks under, subject
 * permissions.
 */
const NATS_SERVER = '/usr/sbin/nats-server';
const USER = 'tessera';
const PASS = 'tessera-test-3f9a1c';
const MiB = 1024 * 1024;

/** A port that was free a moment ago. */
async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

let server: ChildProcess | undefined;
let exited: Promise<unknown> = Promise.resolve();
let output = '';
let clientPort = 0;
let monitorPort = 0;
const connections: NatsConnection[] = [];

async function connectAs(user: string | undefined, pass: string | undefined): Promise<NatsConnection> {
  const connection = await connect({ servers: `127.0.0.1:${clientPort}`, user, pass, timeout: 3_000, reconnect: false });
  connections.push(connection);
  return connection;
}

/** The error `connect` rejects with (fails the test if it connects). */
async function connectFailure(user: string | undefined, pass: string | undefined): Promise<NatsError> {
  try {
    await connectAs(user, pass);
  } catch (error) {
    return error as NatsError;
  }
  throw new Error(`connected as ${user ?? '(nobody)'} with a wrong password`);
}

beforeAll(async () => {
  [clientPort, monitorPort] = [await freePort(), await freePort()];
  const child = spawn(NATS_SERVER, ['-c', join(ROOT, 'deploy/nats.conf'), '-a', '127.0.0.1', '-p', String(clientPort), '-m', String(monitorPort)], {
    env: { ...process.env, TESSERA_NATS_USER: USER, TESSERA_NATS_PASS: PASS },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: false,
  });
  server = child;
  exited = new Promise((resolve) => child.once('exit', resolve));
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Server is ready')) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then(() => reject(new Error(`nats-server exited before it was ready:\n${output}`)));
    setTimeout(() => reject(new Error(`nats-server not ready after 5 s:\n${output}`)), 5_000).unref();
  });
  await ready;
}, 10_000);

afterAll(async () => {
  await Promise.all(connections.map((connection) => connection.close().catch(() => undefined)));
  server?.kill('SIGKILL');
  await exited;
}, 5_000);

describe('deploy/nats.conf on the real nats-server', () => {
  it('listens on the given ports with the limits the config sets', async () => {
    const varz = (await (await fetch(`http://127.0.0.1:${monitorPort}/varz`)).json()) as Record<string, unknown>;
    expect(varz).toMatchObject({
      port: clientPort,
      http_port: monitorPort,
      auth_required: true,
      max_payload: MiB,
      max_pending: 256 * MiB,
      max_connections: 10_000,
      ping_max: 3,
      write_deadline: 10e9,
      ping_interval: 20e9,
    });
  });

  it('carries a 3 MB message in chunks of the announced max_payload to the right credentials', async () => {
    const coordinator = await connectAs(USER, PASS);
    const worker = await connectAs(USER, PASS);
    const maxFrameBytes = coordinator.info!.max_payload;
    expect(maxFrameBytes).toBe(MiB);

    const subject = subjects.toWorker('job-1', 'c1');
    const reassembler = new Reassembler(8 * MiB);
    const received = new Promise<Uint8Array>((resolve, reject) => {
      worker.subscribe(subject, {
        callback: (error, message) => {
          if (error) return reject(error);
          reassembler.add('coordinator', message.data, Date.now()).then((whole) => whole && resolve(whole), reject);
        },
      });
    });
    await worker.flush(); // the subscription is on the server before anything is published

    const message = randomBytes(3 * MiB, mulberry32(7));
    const frames = await splitMessage(message, maxFrameBytes, 1);
    expect(frames.length).toBe(4);
    expect(frames.every((frame) => isChunk(frame) && frame.byteLength <= maxFrameBytes)).toBe(true);
    for (const frame of frames) coordinator.publish(subject, frame);
    await coordinator.flush();

    const whole = await received;
    expect(whole.byteLength).toBe(message.byteLength);
    expect(whole.every((byte, i) => byte === message[i])).toBe(true);
  }, 15_000);

  it('refuses a wrong password, an unknown user and no credentials as an authorization error', async () => {
    for (const [user, pass] of [[USER, 'wrong'], ['intruder', PASS], [undefined, undefined]] as const) {
      const failure = await connectFailure(user, pass);
      expect(failure.code).toBe('AUTHORIZATION_VIOLATION');
      expect(natsError(failure).code).toBe(ErrorCode.Unauthorized);
    }
  }, 15_000);

  it('lets the shared user subscribe only under tessera.>', async () => {
    const connection = await connectAs(USER, PASS);
    const refused = new Promise<NatsError | null>((resolve) => {
      connection.subscribe('elsewhere.secrets', { callback: (error) => resolve(error) });
    });
    await connection.flush();
    expect((await refused)?.code).toBe('PERMISSIONS_VIOLATION');
  }, 10_000);
});
