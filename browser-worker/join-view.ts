/// <reference lib="dom" />
import { describeState, formatGivenTime } from './explain.ts';
import type { TabStatus } from './messages.ts';

/** Draws a tab's status on the join page; no state of its own. */

const $ = (id: string) => document.getElementById(id)!;

/** The calibration table: each backend timed (the chosen one first and bold), then those passed over and why. */
function renderFigures(status: TabStatus): void {
  const body = $('figures');
  body.replaceChildren();
  const row = (cells: string[], className = '') => {
    const tr = document.createElement('tr');
    tr.className = className;
    for (const [i, text] of cells.entries()) {
      const td = document.createElement('td');
      td.textContent = text;
      if (cells.length === 2 && i === 1) {
        td.colSpan = 2;
        td.className = 'skipped';
      }
      tr.append(td);
    }
    body.append(tr);
  };
  for (const figure of status.figures) {
    row(
      [figure.name === status.backend ? `${figure.name} (chosen)` : figure.name, `${figure.msPerStep.toFixed(1)} ms`, figure.samplesPerSecond.toFixed(0)],
      figure.name === status.backend ? 'chosen' : '',
    );
  }
  for (const skip of status.skipped) row([skip.name, `passed over: ${skip.reason}`]);
  if (body.children.length === 0) row(status.backend ? [status.backend, 'chosen by hand in the address (?backend=): not timed'] : ['…', 'measuring']);
}

/** Shows everything the status says, in words. */
export function renderStatus(status: TabStatus): void {
  const state = $('state');
  state.textContent = describeState(status);
  state.dataset.state = status.state;
  state.dataset.activity = status.activity;
  $('backend').textContent = status.backend || '…';
  $('device').textContent = status.device || '…';
  const check = status.speedCheck;
  $('speed-check').textContent = check
    ? `about ${check.samplesPerSecond.toFixed(1)} samples/s on the job's model: a new worker's ${check.firstShare} samples take about ${(check.predictedMs / 1000).toFixed(1)} s here (${(check.overheadMs / 1000).toFixed(1)} s of it transfers); a round waits up to ${(check.deadlineMs / 1000).toFixed(1)} s`
    : status.backend && status.state !== 'calibrating'
      ? 'not checked (backend chosen by hand)'
      : '–';
  $('speed').textContent = status.samplesPerSecond.toFixed(1);
  $('accepted').textContent = String(status.updatesAccepted);
  $('rejected').textContent = String(status.updatesRejected);
  $('late').textContent = String(status.updatesLate);
  $('contributed').textContent = String(status.samplesContributed);
  $('given-time').textContent = formatGivenTime(status.computeMsContributed);
  $('losses').textContent =
    Object.entries(status.losses)
      .map(([name, value]) => `${name} ${value.toFixed(3)}`)
      .join(', ') || '–';
  $('message').textContent = status.message;
  $('toggle').textContent = status.state === 'paused' ? 'Resume' : 'Pause';
  ($('toggle') as HTMLButtonElement).hidden = status.state === 'spectating';
  ($('join-anyway') as HTMLButtonElement).hidden = status.state !== 'spectating';
  renderFigures(status);
}
