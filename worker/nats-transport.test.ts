import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../shared/protocol/errors.ts';
import { natsWorkerTransport } from './nats-transport.ts';

describe('the NATS worker transport', () => {
  const factory = natsWorkerTransport({ servers: ['nats://127.0.0.1:1'] });

  it('refuses to open for no job, since its subjects name the job', () => {
    expect(() => factory({})).toThrow(expect.objectContaining({ code: ErrorCode.InvalidConfig, field: 'jobId' }));
  });

  it('refuses a job id that cannot be a subject token, naming it', () => {
    expect(() => factory({ jobId: 'a.b' })).toThrow(expect.objectContaining({ code: ErrorCode.InvalidConfig, field: 'jobId' }));
  });
});
