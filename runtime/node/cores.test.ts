import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { cgroupCpuQuota, usableCores } from './cores.ts';

/** The cores a process may use, from cgroup files as Linux writes them. */

const files = (contents: Record<string, string>) => (path: string) => contents[path];

describe('usable cores', () => {
  it("reads cgroup v2's cpu.max: a quota in cores, or none", () => {
    expect(cgroupCpuQuota(files({ '/sys/fs/cgroup/cpu.max': '100000 100000\n' }))).toBe(1);
    expect(cgroupCpuQuota(files({ '/sys/fs/cgroup/cpu.max': '250000 100000\n' }))).toBe(2.5);
    expect(cgroupCpuQuota(files({ '/sys/fs/cgroup/cpu.max': 'max 100000\n' }))).toBeUndefined();
  });

  it("reads cgroup v1's cfs quota and period (-1: none)", () => {
    expect(cgroupCpuQuota(files({ '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '50000\n', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n' }))).toBe(0.5);
    expect(cgroupCpuQuota(files({ '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1\n', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n' }))).toBeUndefined();
    expect(cgroupCpuQuota(files({}))).toBeUndefined();
  });

  it('takes the smaller of the CPUs and the quota rounded up, and at least one', () => {
    expect(usableCores(files({ '/sys/fs/cgroup/cpu.max': '100000 100000' }))).toBe(1);
    expect(usableCores(files({ '/sys/fs/cgroup/cpu.max': '50000 100000' }))).toBe(1);
    expect(usableCores(files({ '/sys/fs/cgroup/cpu.max': 'max 100000' }))).toBe(availableParallelism());
    expect(usableCores(files({ '/sys/fs/cgroup/cpu.max': `${1000 * 100000} 100000` }))).toBe(availableParallelism());
  });
});
