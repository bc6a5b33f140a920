#!/usr/bin/env node
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { connectNats, NATS_CLI_OPTIONS, NATS_CLI_USAGE, natsSettingsFrom, natsValues } from '../runtime/node/nats.ts';
import { requireRealSecret } from '../runtime/node/placeholder-secrets.ts';
import { TesseraError } from '../shared/protocol/errors.ts';
import { subjects } from '../shared/protocol/subjects.ts';
import { Aggregator } from './aggregator.ts';

const USAGE = `Usage: npx tsx aggregator/main.ts --nats URL --job ID [options]

Runs an aggregator for one job: takes the job's worker updates from NATS (a queue group shared
with the other aggregators), checks them as the coordinator would, folds them into one partial sum
per round and sends that to the coordinator. Workers need no setting; start or stop aggregators at
any time (docs/aggregators.md).

  --job ID             the job whose updates to aggregate (required)
  --id NAME            this aggregator's id, a subject token (default: host name and pid)
${NATS_CLI_USAGE}  --quiet              print only errors
  --help               print this and exit
`;

const { values } = parseArgs({
  options: {
    job: { type: 'string' },
    id: { type: 'string' },
    quiet: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
    ...NATS_CLI_OPTIONS,
  },
});
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

const settings = natsSettingsFrom(natsValues(values));
if (!settings || !values.job) {
  process.stderr.write(`--nats and --job are required\n\n${USAGE}`);
  process.exit(2);
}
const aggregatorId = values.id ?? `${hostname().replace(/[^A-Za-z0-9_-]/g, '-')}-${process.pid}`;
try {
  requireRealSecret('TESSERA_NATS_PASS', settings.pass);
  // Names both tokens of its subjects, or says which cannot be one.
  subjects.ownerInbox(values.job, aggregatorId);
} catch (error) {
  process.stderr.write(`refusing to start: ${(error as Error).message}\n`);
  process.exit(2);
}

const print = (line: string) => {
  if (!values.quiet) process.stdout.write(`${line}\n`);
};
let connection;
try {
  connection = await connectNats({ ...settings, name: settings.name ?? `tessera-aggregator-${aggregatorId}` });
} catch (error) {
  process.stderr.write(`${(error as Error).message}\n`);
  process.exit(error instanceof TesseraError && error.code === 'UNAUTHORIZED' ? 3 : 1);
}
const aggregator = new Aggregator(connection, { jobId: values.job, aggregatorId, log: print });
await aggregator.start();
print(`aggregator ${aggregatorId} for job ${values.job} on ${settings.servers.join(',')}`);

let stopping = false;
async function shutdown(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  await aggregator.stop();
  await connection!.drain().catch(() => undefined);
  const { partials, folded, refused, forwarded, relayed } = aggregator.counts;
  print(
    `aggregator ${aggregatorId} stopped: ${partials} partials, ${folded} updates folded, ${refused} refused, ${forwarded} frames to owners, ${relayed} relayed`,
  );
  process.exit(code);
}
process.on('SIGINT', () => void shutdown(130));
process.on('SIGTERM', () => void shutdown(143));
