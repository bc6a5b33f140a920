import { describe, expect, it } from 'vitest';
import { lateMeasurement, noteAssignment, recordSpeed, shareInput, type WorkerSession } from './workers.ts';

function session(claimedSamplesPerSecond = 0): WorkerSession {
  return {
    id: 'w1',
    jobId: 'job',
    kind: 'node',
    backend: 'wasm',
    device: 'cpu',
    name: 'w1',
    channel: undefined,
    joinedAt: 0,
    lastSeenAt: 0,
    samplesPerSecond: claimedSamplesPerSecond,
    samplesContributed: 0,
    updatesAccepted: 0,
    updatesRejected: 0,
    bytesReceived: 0,
    weightFetches: 0,
  };
}

describe('worker speed', () => {
  it('takes a hello claim only as a hint until the coordinator has timed the worker', () => {
    const liar = session(1e300);
    expect(shareInput(liar)).toEqual({ speed: 0, hint: 1e300, previous: undefined });
    noteAssignment(liar, 0, 32, 1000);
    // 32 samples, 2 s from assignment to update, claiming 0 ms compute: 16 samples/s measured.
    recordSpeed(liar, 32, 2000, { computeMs: 0, fetchMs: 0 });
    expect(shareInput(liar)).toEqual({ speed: 16, hint: undefined, previous: 32 });
    // What it says is still what it is shown with (its claim replaced by its first report, not averaged with 1e300).
    expect(liar.samplesPerSecond).toBe(32_000);
  });

  it('credits reported transfer only up to a fifth of the measured time, and smooths later measurements', () => {
    const worker = session();
    recordSpeed(worker, 40, 1000, { computeMs: 1, fetchMs: 1e9 });
    expect(worker.speed!.measured).toBe(50);
    recordSpeed(worker, 40, 1000, { computeMs: 900, fetchMs: 100 });
    expect(worker.speed!.measured).toBeCloseTo(50 + 0.3 * (40 / 0.9 - 50), 9);
  });

  it('times a late update of a recent assignment once, with the batch it was given rather than the samples it claims', () => {
    const worker = session();
    noteAssignment(worker, 7, 12, 5000);
    // The next round was assigned before the late update came.
    noteAssignment(worker, 8, 4, 8000);
    expect(lateMeasurement(worker, 6, 9000)).toBeUndefined();
    expect(lateMeasurement(worker, 7, 9000)).toEqual({ samples: 12, finishMs: 4000 });
    expect(lateMeasurement(worker, 7, 9500)).toBeUndefined();
    expect(shareInput(worker).previous).toBe(4);
    for (let round = 9; round < 100; round++) noteAssignment(worker, round, 4, 9000 + round);
    expect(worker.speed!.assigned.length).toBeLessThanOrEqual(32);
    expect(lateMeasurement(worker, 80, 10_000)).toEqual({ samples: 4, finishMs: 10_000 - 9080 });
  });
});
