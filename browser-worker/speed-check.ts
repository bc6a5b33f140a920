import { getCodec } from '../shared/codec/index.ts';
import { arraysToTensors, tensorsToArrays } from '../shared/codec/named.ts';
import { pack } from '../shared/codec/packr.ts';
import { getModel } from '../shared/models/registry.ts';
import type { DataShape, Trainer } from '../shared/models/types.ts';
import { measureStepTime, SPEED_CHECK_SIZES, stepMs, type StepTime } from '../shared/worker/model-speed.ts';
import type { SpeedCheck } from './messages.ts';
import { budgetMs, judgeSpeed, PACE_ROUNDS, paceOf, type JobDescription } from './participation.ts';

export type JobView = JobDescription & {
  id: string;
  config: { model: { id: string; config: Record<string, unknown> }; training: { codec: string } };
  /** The dataset's image shape and classes, which the model is built for. */
  data: DataShape;
};

/** The job this tab joins, as the API describes it: the one named, or the coordinator's first. */
export async function fetchJob(origin: string, jobId: string | undefined): Promise<JobView> {
  const response = await fetch(jobId ? `${origin}/api/jobs/${encodeURIComponent(jobId)}` : `${origin}/api/jobs`);
  const body = await response.json();
  const job = (jobId ? body : body.jobs?.[0]) as JobView | undefined;
  if (!response.ok || !job?.config) throw new Error(body.error?.message ?? 'no job on this coordinator');
  return job;
}

/** The job's recent rounds, oldest first (empty when the API will not say). */
async function fetchRounds(origin: string, jobId: string): Promise<{ durationMs: number; applied: boolean }[]> {
  const response = await fetch(`${origin}/api/jobs/${encodeURIComponent(jobId)}/rounds?limit=${PACE_ROUNDS}`);
  return response.ok ? ((await response.json()).rounds ?? []) : [];
}

/** The largest share timed whole; beyond it the fit extrapolates. */
const LARGEST_TIMED_SHARE = 64;
/** A device this many times over its budget on the quick sizes is not worth timing on a whole share. */
const HOPELESS_FACTOR = 4;

/**
 * A dress rehearsal of one round on this tab: fetches the job's current
 * weights (as every round does), times real steps of its model on them — at
 * one and eight samples, then at the newcomer's share itself (which also
 * grows the backend's memory to that size, so the first real round is not
 * slower than its rehearsal) unless the quick sizes already show the device
 * far too slow — and encodes an update of the job's size. Then it judges
 * whether a newcomer's share fits, its compute stretched by `slowdown` (the
 * page's load limit: at 50% the tab rests as long as it computes). Returns
 * the trainer, on the current weights, so the page can show samples before
 * the tab has trained at all.
 */
export async function checkSpeed(origin: string, job: JobView, slowdown = 1): Promise<{ check: SpeedCheck; trainer: Trainer }> {
  const spec = getModel(job.config.model.id);
  const trainer = spec.createTrainer(spec.parseConfig(job.config.model.config), job.data);
  try {
    const fetchStarted = performance.now();
    const response = await fetch(`${origin}/api/jobs/${encodeURIComponent(job.id)}/weights`);
    if (!response.ok) throw new Error(`weights: HTTP ${response.status}`);
    const codec = getCodec(response.headers.get('x-tessera-codec') ?? 'f32');
    trainer.setWeights(tensorsToArrays(codec.decode(new Uint8Array(await response.arrayBuffer())), trainer.shapes, 'weights'));
    const fetchMs = performance.now() - fetchStarted;

    const pace = paceOf(job, await fetchRounds(origin, job.id));
    const stretched = ({ fixedMs, perSampleMs }: StepTime) => ({ fixedMs: fixedMs * slowdown, perSampleMs: perSampleMs * slowdown });
    let measured = await measureStepTime(trainer, job.data, SPEED_CHECK_SIZES);
    const share = Math.min(pace.firstShare, LARGEST_TIMED_SHARE);
    if (share > Math.max(...SPEED_CHECK_SIZES) && stepMs(stretched(measured.time), share) <= budgetMs(pace) * HOPELESS_FACTOR) {
      measured = await measureStepTime(trainer, job.data, [...SPEED_CHECK_SIZES, share], { repeats: 2 });
    }
    const time = stretched(measured.time);
    const encodeStarted = performance.now();
    pack({ tensors: getCodec(job.config.training.codec).encode(arraysToTensors(measured.grads, trainer.shapes)) });
    const overheadMs = fetchMs + performance.now() - encodeStarted;

    return { check: { ...judgeSpeed(time, pace, overheadMs), overheadMs, firstShare: pace.firstShare, deadlineMs: pace.deadlineMs }, trainer };
  } catch (error) {
    trainer.dispose();
    throw error;
  }
}
