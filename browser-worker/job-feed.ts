/// <reference lib="dom" />
import { describeRound, type RoundEvent } from './explain.ts';

/**
 * The join page's view of the job itself, from the job's event stream (the
 * one the dashboard reads): the coordinator's latest sample grid from the
 * first moment (the current weights, whether or not this tab takes part), and
 * each closed round with whether this tab's update was in it.
 */

export interface JobFeedOptions {
  jobId: string;
  /** This tab's worker id, once it has one. */
  workerId(): string;
  /** Told whether the coordinator has a sample grid to show (the tab draws its own until it has). */
  onGrid(available: boolean): void;
}

const $ = (id: string) => document.getElementById(id)!;

/** Follows the job's events until the page closes. */
export function followJob(options: JobFeedOptions): void {
  const base = `/api/jobs/${encodeURIComponent(options.jobId)}`;
  const image = $('samples') as HTMLImageElement;
  const showGrid = (round: number) => {
    image.onload = () => {
      image.hidden = false;
      ($('local-samples') as HTMLCanvasElement).hidden = true;
      $('samples-caption').textContent = `the job's samples after round ${round} (from the coordinator)`;
      options.onGrid(true);
    };
    // Before the coordinator's first grid latest.png is a 404: the tab's own samples stand in.
    image.onerror = () => options.onGrid(false);
    image.src = `${base}/samples/latest.png?round=${round}`;
  };
  const events = new EventSource(`${base}/events`);
  events.addEventListener('snapshot', (event) => {
    const { job, rounds } = JSON.parse((event as MessageEvent<string>).data) as { job: { round: number }; rounds: RoundEvent[] };
    showGrid(job.round);
    const last = rounds.at(-1);
    if (last) $('round').textContent = describeRound(last, options.workerId());
  });
  events.addEventListener('round', (event) => {
    $('round').textContent = describeRound(JSON.parse((event as MessageEvent<string>).data) as RoundEvent, options.workerId());
  });
  events.addEventListener('samples', (event) => showGrid((JSON.parse((event as MessageEvent<string>).data) as { round: number }).round));
}
