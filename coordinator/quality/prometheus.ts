import { Counter, Gauge, type Registry } from 'prom-client';
import type { Hub } from '../hub.ts';
import type { JobRunner } from '../job/runner.ts';
import type { QualityCounts } from '../../shared/api/jobs.ts';
import type { QualityReport } from '../../shared/eval/report.ts';

/** The report's figures as gauges: one series per job, each a fixed name (no label takes a value from outside). */
const GAUGES: { field: keyof QualityReport; name: string; help: string; scale?: number }[] = [
  {
    field: 'frechet',
    name: 'tessera_quality_frechet',
    help: 'Fréchet distance between the classifier features of the last scored samples and the held-out digits (lower is better).',
  },
  {
    field: 'frechetFloor',
    name: 'tessera_quality_frechet_floor',
    help: 'The same distance for as many real training digits: what a perfect model would score at this sample count.',
  },
  {
    field: 'precision',
    name: 'tessera_quality_precision',
    help: 'Share of the last scored samples inside the k-NN manifold of held-out digits (k = 3): fidelity.',
  },
  { field: 'recall', name: 'tessera_quality_recall', help: 'Share of held-out digits inside the k-NN manifold of the samples (k = 3): diversity.' },
  {
    field: 'recognisable',
    name: 'tessera_quality_recognisable',
    help: 'Share of the last scored samples the classifier gives one class with probability above 0.9.',
  },
  {
    field: 'coverageEntropy',
    name: 'tessera_quality_coverage_entropy',
    help: 'Entropy of the predicted classes of the samples over log(classes): 1 when every class is equally present.',
  },
  { field: 'labelAgreement', name: 'tessera_quality_label_agreement', help: 'Conditional models: share of samples classified as the label asked for.' },
  { field: 'cas', name: 'tessera_quality_cas', help: 'Conditional models: accuracy on held-out digits of a classifier trained on generated ones.' },
  {
    field: 'reconstructionRecognisable',
    name: 'tessera_quality_reconstruction_recognisable',
    help: 'Autoencoders: recognisable share of the reconstructions of held-out digits.',
  },
  {
    field: 'reconstructionAgreement',
    name: 'tessera_quality_reconstruction_agreement',
    help: 'Autoencoders: share of reconstructions classified as the original digit.',
  },
  { field: 'count', name: 'tessera_quality_samples', help: 'Samples the last scoring generated (output.evalSamples).' },
  { field: 'ms', name: 'tessera_quality_scoring_seconds', help: 'Wall time of the last scoring, in its thread.', scale: 1 / 1000 },
];
const OUTCOMES = Object.keys({ scored: true, skipped: true, failed: true } satisfies Record<keyof QualityCounts, true>) as (keyof QualityCounts)[];

/**
 * Sample-quality metrics: the last scoring's figures per job, read from the
 * runner at scrape time (absent until the job's first scoring), and how many
 * scorings were done, skipped or failed.
 */
export function addQualityMetrics(registers: Registry[], hub: Hub): void {
  for (const { field, name, help, scale = 1 } of GAUGES) {
    new Gauge({
      name,
      help,
      labelNames: ['job_id'],
      registers,
      collect() {
        this.reset();
        for (const [jobId, runner] of hub.runners) {
          const value = runner.quality.latest?.[field];
          if (typeof value === 'number' && Number.isFinite(value)) this.set({ job_id: jobId }, value * scale);
        }
      },
    });
  }
  new Gauge({
    name: 'tessera_quality_version',
    help: 'The weights version (training steps) the last scoring scored.',
    labelNames: ['job_id'],
    registers,
    collect() {
      this.reset();
      for (const [jobId, runner] of hub.runners) if (runner.quality.latest) this.set({ job_id: jobId }, runner.quality.latest.version);
    },
  });
  const evaluations = new Counter({
    name: 'tessera_quality_evaluations_total',
    help: 'Sample-quality scorings every output.evalEvery training steps, by outcome: scored, skipped (the previous one still ran: scorings never queue), failed.',
    labelNames: ['job_id', 'outcome'],
    registers,
  });
  const attached = new WeakSet<JobRunner>();
  const attach = (runner: JobRunner) => {
    if (attached.has(runner)) return;
    attached.add(runner);
    const jobId = runner.job.config.id;
    if (runner.job.config.output.evalEvery > 0) for (const outcome of OUTCOMES) evaluations.inc({ job_id: jobId, outcome }, 0);
    runner.quality.on('quality', () => evaluations.inc({ job_id: jobId, outcome: 'scored' }));
    runner.quality.on('skipped', () => evaluations.inc({ job_id: jobId, outcome: 'skipped' }));
    runner.quality.on('failed', () => evaluations.inc({ job_id: jobId, outcome: 'failed' }));
  };
  for (const runner of hub.runners.values()) attach(runner);
  hub.on('jobAdded', attach);
}
