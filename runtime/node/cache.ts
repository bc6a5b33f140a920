import { homedir } from 'node:os';
import { join } from 'node:path';

/** Where Tessera keeps what it makes once and reuses (evaluator weights, converted datasets): $TESSERA_CACHE/KIND, else ~/.cache/tessera/KIND. */
export function tesseraCacheDir(kind: string, env: NodeJS.ProcessEnv = process.env): string {
  return env.TESSERA_CACHE ? join(env.TESSERA_CACHE, kind) : join(homedir(), '.cache', 'tessera', kind);
}
