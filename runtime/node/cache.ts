import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

/** Where Tessera keeps what it makes once and reuses (evaluator weights, converted datasets): $TESSERA_CACHE/KIND, else ~/.cache/tessera/KIND. */
export function tesseraCacheDir(kind: string, env: NodeJS.ProcessEnv = process.env): string {
  return env.TESSERA_CACHE ? join(env.TESSERA_CACHE, kind) : join(homedir(), '.cache', 'tessera', kind);
}

/** Where converted datasets go: $TESSERA_CACHE/datasets, else ~/.cache/tessera/datasets. */
export function datasetCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return tesseraCacheDir('datasets', env);
}

/**
 * The bytes of the cache file at `path` (named by the hash of what it is made
 * from), or, when it is missing or `isWhole` finds it torn, the bytes `make`
 * gives, written there first. Written aside and renamed: two processes
 * making it at once each leave a whole file.
 */
export function readOrMakeCacheFile(path: string, isWhole: (bytes: Uint8Array) => boolean, make: () => Uint8Array): { bytes: Uint8Array; made: boolean } {
  let bytes: Uint8Array | undefined;
  try {
    bytes = readFileSync(path);
  } catch {
    bytes = undefined;
  }
  if (bytes && isWhole(bytes)) return { bytes, made: false };
  bytes = make();
  mkdirSync(dirname(path), { recursive: true });
  const partial = `${path}.${process.pid}.partial`;
  writeFileSync(partial, bytes);
  renameSync(partial, path);
  return { bytes, made: true };
}
