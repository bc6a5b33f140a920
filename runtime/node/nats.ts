import { readFileSync } from 'node:fs';
import { connect, nkeyAuthenticator, nkeys, type ConnectionOptions, type NatsConnection } from 'nats';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';

/**
 * How to reach a NATS cluster: server URLs and, as the cluster asks,
 * user/password, a token or an nkey seed, and TLS files. The Node runtime's
 * part, shared by the coordinator and the Node worker.
 */
export interface NatsSettings {
  servers: string[];
  user?: string;
  pass?: string;
  token?: string;
  /** A file holding the nkey seed (SU...). */
  nkeySeedFile?: string;
  /** The nkey seed itself, held in memory (one leased from the coordinator: worker/nats-identity.ts). */
  nkeySeed?: string;
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  /** The connection's name in the server's monitoring. */
  name?: string;
}

/** Reads NATS settings from command-line values and the environment (TESSERA_NATS_*). */
export function natsSettingsFrom(
  values: {
    nats?: string;
    natsUser?: string;
    natsPass?: string;
    natsToken?: string;
    natsNkeySeedFile?: string;
    natsCa?: string;
    natsCert?: string;
    natsKey?: string;
  },
  env: NodeJS.ProcessEnv = process.env,
): NatsSettings | undefined {
  const servers = values.nats ?? env.TESSERA_NATS_URL;
  if (!servers) return undefined;
  const settings: NatsSettings = {
    servers: servers
      .split(',')
      .map((server) => server.trim())
      .filter(Boolean),
  };
  const user = values.natsUser ?? env.TESSERA_NATS_USER;
  const pass = values.natsPass ?? env.TESSERA_NATS_PASS;
  const token = values.natsToken ?? env.TESSERA_NATS_TOKEN;
  const seed = values.natsNkeySeedFile ?? env.TESSERA_NATS_NKEY_SEED_FILE;
  if (user) settings.user = user;
  if (pass) settings.pass = pass;
  if (token) settings.token = token;
  if (seed) settings.nkeySeedFile = seed;
  const ca = values.natsCa ?? env.TESSERA_NATS_CA;
  const cert = values.natsCert ?? env.TESSERA_NATS_CERT;
  const key = values.natsKey ?? env.TESSERA_NATS_KEY;
  if (ca || cert || key) settings.tls = { caFile: ca, certFile: cert, keyFile: key };
  return settings;
}

/** The command-line options natsSettingsFrom reads, for parseArgs. */
export const NATS_CLI_OPTIONS = {
  nats: { type: 'string' },
  'nats-user': { type: 'string' },
  'nats-pass': { type: 'string' },
  'nats-token': { type: 'string' },
  'nats-nkey-seed-file': { type: 'string' },
  'nats-ca': { type: 'string' },
  'nats-cert': { type: 'string' },
  'nats-key': { type: 'string' },
} as const;

export const NATS_CLI_USAGE = `  --nats URLS          NATS servers, comma-separated (env TESSERA_NATS_URL)
  --nats-user U, --nats-pass P, --nats-token T, --nats-nkey-seed-file F
                       NATS credentials (env TESSERA_NATS_USER, _PASS, _TOKEN, _NKEY_SEED_FILE)
  --nats-ca F, --nats-cert F, --nats-key F
                       TLS files for the NATS connection (env TESSERA_NATS_CA, _CERT, _KEY)
`;

/** Picks the NATS values out of parseArgs' result. */
export function natsValues(values: Record<string, unknown>) {
  const text = (key: string) => (typeof values[key] === 'string' ? (values[key] as string) : undefined);
  return {
    nats: text('nats'),
    natsUser: text('nats-user'),
    natsPass: text('nats-pass'),
    natsToken: text('nats-token'),
    natsNkeySeedFile: text('nats-nkey-seed-file'),
    natsCa: text('nats-ca'),
    natsCert: text('nats-cert'),
    natsKey: text('nats-key'),
  };
}

/**
 * Connects, and keeps reconnecting for as long as the process runs: a
 * restarted nats-server must not end a training job. Wrong credentials are
 * final and come back as an Unauthorized TesseraError.
 */
export async function connectNats(settings: NatsSettings): Promise<NatsConnection> {
  const options: ConnectionOptions = {
    servers: settings.servers,
    name: settings.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    pingInterval: 10_000,
  };
  if (settings.user !== undefined) {
    options.user = settings.user;
    options.pass = settings.pass;
  }
  if (settings.token !== undefined) options.token = settings.token;
  const seed = nkeySeedOf(settings);
  if (seed) options.authenticator = nkeyAuthenticator(new TextEncoder().encode(seed));
  if (settings.tls) options.tls = { caFile: settings.tls.caFile, certFile: settings.tls.certFile, keyFile: settings.tls.keyFile };
  try {
    return await connect(options);
  } catch (error) {
    throw natsError(error);
  }
}

/** The nkey seed the settings authenticate with, if any. */
export function nkeySeedOf(settings: NatsSettings): string | undefined {
  if (settings.nkeySeed) return settings.nkeySeed.trim();
  return settings.nkeySeedFile ? readFileSync(settings.nkeySeedFile, 'utf8').trim() : undefined;
}

/**
 * The connection id a worker's subjects carry: the public key of its nkey,
 * which is what the per-worker permissions of deploy/nats.conf allow it to
 * publish as; a random one without an nkey (a server without per-worker users).
 */
export function workerConnectionId(settings: NatsSettings): string {
  const seed = nkeySeedOf(settings);
  if (seed) return nkeys.fromSeed(new TextEncoder().encode(seed)).getPublicKey();
  return `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;
}

/** NATS's connect errors as TesseraErrors: bad credentials are Unauthorized, the rest Internal. */
export function natsError(error: unknown): TesseraError {
  const code = (error as { code?: string }).code ?? '';
  const message = (error as Error).message ?? String(error);
  if (/AUTHORIZATION|AUTHENTICATION|BAD_CREDS|PERMISSIONS/i.test(`${code} ${message}`)) {
    return new TesseraError(ErrorCode.Unauthorized, `NATS refused the credentials: ${message}`, { field: 'nats', cause: error });
  }
  return new TesseraError(ErrorCode.Internal, `NATS connection failed: ${message}`, { field: 'nats', cause: error });
}
