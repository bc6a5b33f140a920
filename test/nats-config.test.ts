import { connect, nkeyAuthenticator, nkeys, type NatsConnection, type NatsError } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isChunk, Reassembler, splitMessage } from '../shared/codec/chunking.ts';
import { mulberry32, randomBytes } from '../shared/codec/test-utils.ts';
import { ErrorCode } from '../shared/protocol/errors.ts';
import { subjects } from '../shared/protocol/subjects.ts';
import { natsError } from '../runtime/node/nats.ts';
import { NATS_PASS as PASS, NATS_USER as USER, startConfiguredNats, type ConfiguredNats } from './helpers/nats-conf.ts';

/**
 * Runs the real nats-server on deploy/nats.conf (on free ports, which -p and
 * -m override), with the users deploy/nats-users.ts generates beside it, and
 * checks the settings the config promises: the coordinator's credentials from
 * the environment, one identity per worker, the 1 MB payload limit Tessera
 * chunks under, and subject permissions: a worker publishes and reads only on
 * its own subjects.
 */
const MiB = 1024 * 1024;

let nats: ConfiguredNats;
let clientPort = 0;
let monitorPort = 0;
const connections: NatsConnection[] = [];
/** Two worker identities of the generated pool: their seeds and public keys. */
let workers: { seed: string; id: string }[] = [];

async function connectAs(user: string | undefined, pass: string | undefined): Promise<NatsConnection> {
  const connection = await connect({ servers: `127.0.0.1:${clientPort}`, user, pass, timeout: 3_000, reconnect: false });
  connections.push(connection);
  return connection;
}

/** Connects with a worker's nkey seed. */
async function connectWorker(seed: string): Promise<NatsConnection> {
  const connection = await connect({
    servers: `127.0.0.1:${clientPort}`,
    authenticator: nkeyAuthenticator(new TextEncoder().encode(seed)),
    timeout: 3_000,
    reconnect: false,
  });
  connections.push(connection);
  return connection;
}

/** The permission violations a connection is told of, as `operation subject`. */
function violations(connection: NatsConnection): string[] {
  const seen: string[] = [];
  void (async () => {
    for await (const status of connection.status()) {
      const context = (status as { permissionContext?: { operation: string; subject: string } }).permissionContext;
      if (status.data === 'PERMISSIONS_VIOLATION' && context) seen.push(`${context.operation} ${context.subject}`);
    }
  })();
  return seen;
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
  nats = await startConfiguredNats(2);
  ({ clientPort, monitorPort, workers } = nats);
}, 10_000);

afterAll(async () => {
  await Promise.all(connections.map((connection) => connection.close().catch(() => undefined)));
  await nats?.stop();
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

  it('carries a 3 MB message in chunks of the announced max_payload from the coordinator to a worker', async () => {
    const coordinator = await connectAs(USER, PASS);
    const worker = await connectWorker(workers[0].seed);
    const maxFrameBytes = coordinator.info!.max_payload;
    expect(maxFrameBytes).toBe(MiB);

    const subject = subjects.toWorker('job-1', workers[0].id);
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

  it('refuses a wrong password, an unknown user, an nkey not in the pool and no credentials as an authorization error', async () => {
    for (const [user, pass] of [
      [USER, 'wrong'],
      ['intruder', PASS],
      [undefined, undefined],
    ] as const) {
      const failure = await connectFailure(user, pass);
      expect(failure.code).toBe('AUTHORIZATION_VIOLATION');
      expect(natsError(failure).code).toBe(ErrorCode.Unauthorized);
    }
    const stranger = new TextDecoder().decode(nkeys.createUser().getSeed());
    const failure = await connectWorker(stranger).then(
      () => undefined,
      (error: NatsError) => error,
    );
    expect(failure?.code).toBe('AUTHORIZATION_VIOLATION');
  }, 15_000);

  it("lets the coordinator subscribe only to the workers' messages", async () => {
    const connection = await connectAs(USER, PASS);
    for (const subject of ['elsewhere.secrets', subjects.toWorker('job-1', workers[0].id)]) {
      const refused = new Promise<NatsError | null>((resolve) => {
        connection.subscribe(subject, { callback: (error) => resolve(error) });
      });
      await connection.flush();
      expect((await refused)?.code, subject).toBe('PERMISSIONS_VIOLATION');
    }
  }, 10_000);

  it("refuses a worker publishing on another worker's subject, or as the coordinator; its own reaches the coordinator", async () => {
    const [mine, theirs] = workers;
    const coordinator = await connectAs(USER, PASS);
    const received: string[] = [];
    coordinator.subscribe(subjects.coordinatorInbox('job-1'), {
      callback: (_error, message) => received.push(`${message.subject} ${new TextDecoder().decode(message.data)}`),
    });
    await coordinator.flush();
    const worker = await connectWorker(mine.seed);
    const refusals = violations(worker);
    const forged = [
      subjects.toCoordinator('job-1', theirs.id),
      subjects.toWorker('job-1', theirs.id),
      subjects.toWorker('job-1', mine.id),
      subjects.broadcast('job-1'),
    ];
    for (const subject of forged) worker.publish(subject, new TextEncoder().encode('forged'));
    worker.publish(subjects.toCoordinator('job-1', mine.id), new TextEncoder().encode('mine'));
    await worker.flush();
    await coordinator.flush();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(received).toEqual([`${subjects.toCoordinator('job-1', mine.id)} mine`]);
    expect(refusals.sort()).toEqual(forged.map((subject) => `publish ${subject}`).sort());
  }, 10_000);

  it('refuses a worker reading what is sent to another worker, also through a wildcard', async () => {
    const [mine, theirs] = workers;
    const worker = await connectWorker(mine.seed);
    for (const subject of [subjects.toWorker('job-1', theirs.id), 'tessera.job-1.out.*', 'tessera.*.out.*', 'tessera.>', subjects.coordinatorInbox('job-1')]) {
      const refused = new Promise<NatsError | null>((resolve) => {
        worker.subscribe(subject, { callback: (error) => resolve(error) });
      });
      await worker.flush();
      expect((await refused)?.code, subject).toBe('PERMISSIONS_VIOLATION');
    }
    // Its own subjects and the broadcast are allowed: nothing is refused for them.
    const refusals = violations(worker);
    const allowed = [subjects.toWorker('job-1', mine.id), subjects.broadcast('job-1')];
    for (const subject of allowed) worker.subscribe(subject);
    await worker.flush();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(refusals.filter((refusal) => allowed.some((subject) => refusal.endsWith(` ${subject}`)))).toEqual([]);
  }, 10_000);
});
