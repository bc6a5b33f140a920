/*
 * k6 version of ws-fleet.ts: a ramp of simulated workers on the coordinator's
 * WebSocket. Each virtual user is one worker: it says hello, fetches the
 * weights once to learn the tensors, answers every assignment with a valid
 * update of small random gradients (f32), and leaves after WORKER_SECONDS.
 *
 *   k6 run -e URL=ws://127.0.0.1:8080/ws -e WORKERS=500 -e RAMP=30s -e HOLD=2m test/load/ws-workers.js
 *
 * Needs k6 >= 1.0 (the k6/websockets module). Run the job with the f32 codec
 * (the default) and a small model, as for ws-fleet.ts. Only against a
 * coordinator you run, on loopback or your own test hosts.
 */
import { Counter, Trend } from 'k6/metrics';
import { clearInterval, setInterval, setTimeout } from 'k6/timers';
import { WebSocket } from 'k6/websockets';
import * as protocol from './k6-protocol.js';

const WORKERS = Number(__ENV.WORKERS || 200);
const COMPUTE_MS = Number(__ENV.COMPUTE_MS || 20);

export const options = {
  scenarios: {
    workers: {
      executor: 'ramping-vus',
      startVUs: 0,
      stages: [
        { duration: __ENV.RAMP || '30s', target: WORKERS },
        { duration: __ENV.HOLD || '1m', target: WORKERS },
        { duration: '10s', target: 0 },
      ],
      // A worker that is told to stop leaves cleanly, as on SIGTERM.
      gracefulRampDown: '15s',
    },
  },
  thresholds: {
    tessera_update_ack_ms: ['p(99)<2000'],
    tessera_rejects: ['count==0'],
    tessera_refused: ['count==0'],
    tessera_dropped: ['count==0'],
  },
};

const joinMs = new Trend('tessera_join_ms', true);
const ackMs = new Trend('tessera_update_ack_ms', true);
const updates = new Counter('tessera_updates');
const rejects = new Counter('tessera_rejects');
const refused = new Counter('tessera_refused');
const dropped = new Counter('tessera_dropped');

export default function () {
  const url = __ENV.URL || 'ws://127.0.0.1:8080/ws';
  const lifetimeMs = Number(__ENV.WORKER_SECONDS || 60) * 1000;
  const socket = new WebSocket(url);
  socket.binaryType = 'arraybuffer';
  const send = (bytes) => socket.send(protocol.arrayBufferOf(bytes));
  const connectedAt = Date.now();
  const sentAt = {};
  let shapes;
  let fetched = false;
  let waiting;
  let leaving = false;
  let heartbeat;

  const compute = (assign) =>
    setTimeout(
      () => {
        if (leaving) return;
        sentAt[assign.round] = Date.now();
        updates.add(1);
        send(protocol.update(assign, shapes, COMPUTE_MS));
      },
      COMPUTE_MS * (0.5 + Math.random()),
    );

  socket.onopen = () => {
    send(protocol.hello({ name: `k6-${__VU}-${__ITER}`, token: __ENV.TESSERA_WORKER_TOKEN, jobId: __ENV.JOB }));
    setTimeout(() => {
      leaving = true;
      clearInterval(heartbeat);
      send(protocol.leave('k6 done'));
      socket.close();
    }, lifetimeMs);
  };

  const acknowledged = (round) => {
    if (sentAt[round] !== undefined) ackMs.add(Date.now() - sentAt[round]);
    delete sentAt[round];
  };
  socket.onmessage = (event) => {
    const message = protocol.decode(new Uint8Array(event.data));
    switch (message.type) {
      case 'welcome':
        joinMs.add(Date.now() - connectedAt);
        heartbeat = setInterval(() => send(protocol.heartbeat()), message.heartbeatMs);
        break;
      case 'assign':
        // The ack of the last update rides on the next assignment in a large round (protocol 3).
        if (message.acknowledges !== undefined) acknowledged(message.acknowledges);
        if (shapes) {
          compute(message);
        } else {
          waiting = message;
          if (!fetched) {
            fetched = true;
            send(protocol.fetchWeights(message.weightsHash));
          }
        }
        break;
      case 'weights':
        shapes = protocol.tensorShapes(message);
        if (waiting) compute(waiting);
        waiting = undefined;
        break;
      case 'ack':
        acknowledged(message.round);
        break;
      case 'reject':
        rejects.add(1, { code: message.code });
        break;
      case 'error':
        refused.add(1, { code: message.code });
        break;
    }
  };

  socket.onclose = () => {
    clearInterval(heartbeat);
    if (!leaving) dropped.add(1);
  };
}
