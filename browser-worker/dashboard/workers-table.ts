/// <reference lib="dom" />
import type { describeWorker } from '../../coordinator/workers.ts';
import { formatAge, formatCount, formatRate } from './format.ts';

/** A worker as the coordinator describes it in `workers` events. */
export type WorkerRow = ReturnType<typeof describeWorker>;

function cell(text: string, title?: string): HTMLTableCellElement {
  const td = document.createElement('td');
  td.textContent = text;
  if (title) td.title = title;
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
        cell(formatAge(worker.lastSeenAt, now), worker.lastSeenAt),
        connected,
      );
      return row;
    }),
  );
}
