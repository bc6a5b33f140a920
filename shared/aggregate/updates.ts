import type { WeightedUpdate } from './types.ts';

/**
 * The tensor names every update must share, checked: at least one update,
 * weights finite and not negative with a positive sum, the same tensors of
 * the same lengths in each. `who` prefixes the message (a programming error
 * upstream: the job validated each update at the door).
 */
export function checkUpdates(updates: readonly WeightedUpdate[], who: string): string[] {
  if (updates.length === 0) throw new Error(`${who}: no updates`);
  let total = 0;
  for (const update of updates) {
    if (!(update.weight >= 0) || !Number.isFinite(update.weight)) throw new Error(`${who}: a weight is ${update.weight}, not a finite number >= 0`);
    total += update.weight;
  }
  if (!(total > 0)) throw new Error(`${who}: the weights sum to zero`);
  const names = Object.keys(updates[0].tensors);
  for (const update of updates) {
    if (Object.keys(update.tensors).length !== names.length) throw new Error(`${who}: updates hold different tensors`);
    for (const name of names) {
      const values = update.tensors[name];
      if (!values || values.length !== updates[0].tensors[name].length) throw new Error(`${who}: tensor ${name} differs in length between updates`);
    }
  }
  return names;
}
