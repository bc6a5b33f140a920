import { describe, expect, it } from 'vitest';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import { retrying } from './retry.ts';

const transient = () => Object.assign(new Error('503'), { code: '503' });
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('retrying', () => {
  it('does not count the wait before an attempt (a write waiting on its fence) against the retry budget', async () => {
    let attempts = 0;
    // Without the waits counted out, the second failure (at ~400 ms: two waits, one back-off) would end a 250 ms budget.
    const result = retrying(
      'writing',
      250,
      async () => {
        attempts += 1;
        if (attempts < 3) throw transient();
        return 'written';
      },
      // Each attempt waits first, as a write does while the lease is unconfirmed.
      () => sleep(150),
    );
    await expect(result).resolves.toBe('written');
    expect(attempts).toBe(3);
  });

  it('still gives up once the budget is spent on failed attempts', async () => {
    let attempts = 0;
    const result = retrying('writing', 150, async () => {
      attempts += 1;
      throw transient();
    });
    await expect(result).rejects.toMatchObject({ code: ErrorCode.Internal, field: 'store' });
    expect(attempts).toBeGreaterThan(1);
  });

  it("ends at the before hook's refusal, which it passes on as it is, with no attempt after it", async () => {
    let attempts = 0;
    const lost = new TesseraError(ErrorCode.Internal, 'not writing: the lease is lost', { field: 'lease' });
    let calls = 0;
    const result = retrying(
      'writing',
      10_000,
      async () => {
        attempts += 1;
        throw transient();
      },
      async () => {
        calls += 1;
        if (calls === 2) throw lost;
      },
    );
    await expect(result).rejects.toBe(lost);
    expect(attempts).toBe(1);
  });
});
