/// <reference lib="dom" />
import type { WorkerRow } from '../shared/api/workers.ts';
import { formatAge, formatCount, formatRate } from './format.ts';

function cell(text: string, title?: string): HTMLTableCellElement {
  const td = document.createElement('td');
  td.textContent = text;
  if (title) td.title = title;
  return td;
}

/** The trust score, and whether the job ignores the worker's updates (quarantined) or refuses it (banned). */
function trustCell(worker: WorkerRow): HTMLTableCellElement {
  const score = worker.trust.toFixed(2);
  const text = worker.banned ? `banned (${score})` : worker.quarantined ? `quarantined (${score})` : score;
  const td = cell(text, worker.quarantined ? 'its updates are acknowledged but not aggregated; an admin can release or ban it' : undefined);
  if (worker.quarantined) td.className = 'quarantined';
  return td;
}

/**
 * The worker table: connected workers first. Built from text nodes only,
 * since names and devices come from the workers themselves.
 */
export function renderWorkers(body: HTMLTableSectionElement, workers: readonly WorkerRow[], now: number): void {
  const sorted = [...workers].sort((a, b) => Number(b.connected) - Number(a.connected) || a.id.localeCompare(b.id));
  body.replaceChildren(
    ...sorted.map((worker) => {
      const row = document.createElement('tr');
      row.dataset.workerId = worker.id;
      row.dataset.connected = String(worker.connected);
      const id = cell(worker.id);
      const name = document.createElement('div');
      name.className = 'sub';
      name.textContent = worker.name;
      id.append(name);
      row.dataset.quarantined = String(worker.quarantined);
      if (worker.quarantined) row.className = 'quarantined';
      const connected = cell(worker.connected ? `yes${worker.transport ? ` (${worker.transport})` : ''}` : 'no');
      connected.className = worker.connected ? 'ok' : 'gone';
      row.append(
        id,
        cell(worker.kind),
        cell(worker.backend),
        cell(worker.device, worker.device),
        cell(formatRate(worker.samplesPerSecond)),
        cell(formatCount(worker.samplesContributed)),
        cell(`${formatCount(worker.updatesAccepted)} / ${formatCount(worker.updatesRejected)}`),
        trustCell(worker),
        cell(formatAge(worker.lastSeenAt, now), worker.lastSeenAt),
        connected,
      );
      return row;
    }),
  );
}
