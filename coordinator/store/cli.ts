import type { NatsSettings } from '../../runtime/node/nats.ts';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import { folderStores } from './folder-store.ts';
import type { JobStores } from './job-store.ts';
import { connectJetStreamStores } from './jetstream-stores.ts';

/** The usage lines of the options storesFromCli reads, `--store` and `--store-replicas` (main.ts declares them to parseArgs). */
export const STORE_CLI_USAGE = `  --store KIND         where each job's checkpoint, status and round log are kept: folder (default: its output
                       folder) or nats (JetStream on the --nats servers; samples and exports stay in the folder)
  --store-replicas N   with --store nats: replicas of its buckets and stream (default min(3, servers the cluster
                       advertises); docs/job-store.md)
`;

/** The job stores `--store` names; a TesseraError naming the option for a kind it does not know, or nats without servers. */
export async function storesFromCli(values: { store?: string; 'store-replicas'?: string }, nats: NatsSettings | undefined): Promise<JobStores> {
  const kind = values.store ?? 'folder';
  const replicas = values['store-replicas'];
  if (kind === 'folder') {
    if (replicas !== undefined) throw new TesseraError(ErrorCode.InvalidConfig, '--store-replicas goes with --store nats', { field: 'store-replicas' });
    return folderStores;
  }
  if (kind !== 'nats') throw new TesseraError(ErrorCode.InvalidConfig, `--store is folder or nats, not ${JSON.stringify(kind)}`, { field: 'store' });
  if (!nats) throw new TesseraError(ErrorCode.InvalidConfig, '--store nats needs the NATS servers: --nats URLS (or TESSERA_NATS_URL)', { field: 'store' });
  return connectJetStreamStores(nats, { replicas: replicas === undefined ? undefined : Number(replicas) });
}
