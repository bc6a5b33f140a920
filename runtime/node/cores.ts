import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/**
 * The cores this process may use: the CPUs it may run on, and no more than
 * its cgroup's CPU quota (a Kubernetes limit of `cpu: "1"` on a 16-core
 * node is 1, where os.availableParallelism() says 16 on Node 20).
 */
export function usableCores(read: (path: string) => string | undefined = readOrUndefined): number {
  const quota = cgroupCpuQuota(read);
  return Math.max(1, Math.min(availableParallelism(), quota === undefined ? Infinity : Math.ceil(quota)));
}

/** The cgroup's CPU quota in cores (v2's cpu.max, else v1's cfs files), undefined when there is none. */
export function cgroupCpuQuota(read: (path: string) => string | undefined): number | undefined {
  const v2 = read('/sys/fs/cgroup/cpu.max')?.trim().split(/\s+/);
  if (v2) return v2[0] === 'max' ? undefined : quotaOf(Number(v2[0]), Number(v2[1]));
  return quotaOf(Number(read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us')), Number(read('/sys/fs/cgroup/cpu/cpu.cfs_period_us')));
}

function quotaOf(quotaUs: number, periodUs: number): number | undefined {
  return quotaUs > 0 && periodUs > 0 ? quotaUs / periodUs : undefined;
}

function readOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
