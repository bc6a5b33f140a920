import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sessionAuthorization } from '../../shared/protocol/session-auth.ts';
import { tesseraCacheDir } from './cache.ts';

/*
 * Shard blobs of folder datasets on disk, named by their content hash: the
 * coordinator writes every shard it serves, and a Node worker on the same
 * machine (the same cache folder) reads them there instead of fetching them.
 * Whoever reads one still checks its hash (shared/data/shard-blobs.ts).
 */

/** Where shard blobs are kept: $TESSERA_CACHE/datasets/shards, else ~/.cache/tessera/datasets/shards. */
export function shardCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(tesseraCacheDir('datasets', env), 'shards');
}

/** A hash as a file name: 64 hex digits and nothing else, so a hash from the wire cannot name another path. */
const HASH = /^[0-9a-f]{64}$/;

/** Writes a shard blob under its hash unless a file of that size is there already. */
export function keepShardFile(hash: string, bytes: Uint8Array, dir = shardCacheDir()): void {
  if (!HASH.test(hash)) throw new RangeError(`not a sha256 hash: ${hash.slice(0, 80)}`);
  const path = join(dir, hash);
  try {
    if (statSync(path).size === bytes.byteLength) return;
  } catch {
    // Absent: written below.
  }
  mkdirSync(dir, { recursive: true });
  // Written aside and renamed: a reader never sees half a blob.
  const partial = `${path}.${process.pid}.partial`;
  writeFileSync(partial, bytes);
  renameSync(partial, path);
}

/** The shard blob of this hash from the cache folder, or undefined. */
export function readShardFile(hash: string, dir = shardCacheDir()): Uint8Array | undefined {
  if (!HASH.test(hash)) return undefined;
  try {
    return readFileSync(join(dir, hash));
  } catch {
    return undefined;
  }
}

/**
 * How a Node worker gets a shard: from the cache folder when a coordinator on
 * this machine wrote it there, else from the coordinator's API (the origin of
 * its --url, or its --coordinator URL), with the session's credential; what
 * it fetches it keeps in the cache folder.
 */
export function shardFetcher(
  coordinatorUrl: string | undefined,
  credential: () => [string | undefined, string | undefined],
): (hash: string) => Promise<Uint8Array> {
  return async (hash) => {
    const cached = readShardFile(hash);
    if (cached) return cached;
    if (!coordinatorUrl)
      throw new Error(`shard ${hash} is not in ${shardCacheDir()}, and with no --url or --coordinator there is no coordinator API to fetch it from`);
    const origin = new URL(coordinatorUrl).origin.replace(/^ws/, 'http');
    const [workerId, dataToken] = credential();
    const response = await fetch(`${origin}/api/shards/${hash}`, { headers: { authorization: sessionAuthorization(workerId!, dataToken!) } });
    if (!response.ok) throw new Error(`shard ${hash}: HTTP ${response.status} ${(await response.text()).slice(0, 200)}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    // Kept on disk only when its hash checks out (the ShardCache checks it again, as it does a file's).
    if (createHash('sha256').update(bytes).digest('hex') === hash) keepShardFile(hash, bytes);
    return bytes;
  };
}
