import * as tf from '@tensorflow/tfjs';

/** A backend a runtime can offer: how to make it available, in order of preference. */
export interface BackendCandidate {
  /** The name tfjs registers it under (`tensorflow`, `webgpu`, `wasm`, `cpu`, ...). */
  name: string;
  /** Imports or registers the backend; throws or returns false when it is not available here. */
  load(): Promise<boolean | void>;
}

export interface BackendChoice {
  name: string;
  /** Why each preferred backend before it was passed over. */
  skipped: { name: string; reason: string }[];
}

/**
 * Tries the candidates in order and keeps the first that loads and
 * initializes. Each runtime (Node worker, browser worker) supplies its own
 * list; this function knows none of them.
 */
export async function selectBackend(candidates: readonly BackendCandidate[]): Promise<BackendChoice> {
  const skipped: BackendChoice['skipped'] = [];
  for (const candidate of candidates) {
    try {
      if ((await candidate.load()) === false) {
        skipped.push({ name: candidate.name, reason: 'not available' });
        continue;
      }
      if (await tf.setBackend(candidate.name)) {
        await tf.ready();
        return { name: candidate.name, skipped };
      }
      skipped.push({ name: candidate.name, reason: 'failed to initialize' });
    } catch (error) {
      skipped.push({ name: candidate.name, reason: (error as Error).message.split('\n')[0] });
    }
  }
  throw new Error(`no tfjs backend could start: ${skipped.map((entry) => `${entry.name} (${entry.reason})`).join(', ')}`);
}
