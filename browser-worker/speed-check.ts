import { getCodec } from '../shared/codec/index.ts';
import { arraysToTensors, tensorsToArrays } from '../shared/codec/named.ts';
import { pack } from '../shared/codec/packr.ts';
import { getModel } from '../shared/models/registry.ts';
import type { Trainer } from '../shared/models/types.ts';
import { measureStepTime } from '../shared/worker/model-speed.ts';
import type { SpeedCheck } from './messages.ts';
import { judgeSpeed, PACE_ROUNDS, paceOf, type JobDescription } from './participation.ts';

export type JobView = JobDescription & {
  id: string;
  config: { model: { id: string; config: Record<string, unknown> }; training: { codec: string } };
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

/**
 * A dress rehearsal of one round on this tab: fetches the job's current
 * weights (as every round does), times a few real steps of its model on them,
 * and encodes an update of the job's size; then judges whether a newcomer's
 * share fits before the deadline. Returns the trainer, on the current
 * weights, so the page can show samples before the tab has trained at all.
 */
export async function checkSpeed(origin: string, job: JobView): Promise<{ check: SpeedCheck; trainer: Trainer }> {
  const spec = getModel(job.config.model.id);
  const trainer = spec.createTrainer(spec.parseConfig(job.config.model.config));
  try {
    const fetchStarted = performance.now();
    const response = await fetch(`${origin}/api/jobs/${encodeURIComponent(job.id)}/weights`);
    if (!response.ok) throw new Error(`weights: HTTP ${response.status}`);
    const codec = getCodec(response.headers.get('x-tessera-codec') ?? 'f32');
    trainer.setWeights(tensorsToArrays(codec.decode(new Uint8Array(await response.arrayBuffer())), trainer.shapes, 'weights'));
    const fetchMs = performance.now() - fetchStarted;

    const { time, grads } = await measureStepTime(trainer, spec);
    const encodeStarted = performance.now();
    pack({ tensors: getCodec(job.config.training.codec).encode(arraysToTensors(grads, trainer.shapes)) });
    const overheadMs = fetchMs + performance.now() - encodeStarted;

    const pace = paceOf(job, await fetchRounds(origin, job.id));
    return { check: { ...judgeSpeed(time, pace, overheadMs), overheadMs, firstShare: pace.firstShare, deadlineMs: pace.deadlineMs }, trainer };
  } catch (error) {
    trainer.dispose();
    throw error;
  }
}
