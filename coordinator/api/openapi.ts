/**
 * The OpenAPI 3.1 description of the coordinator's HTTP API, served at
 * /api/openapi.json. Kept beside the routes (coordinator/api/*.ts, app.ts).
 *
 * To document a new route, add one entry to `paths` built with `operation()`:
 * its `access` sets the security requirement and the 401 answer, so the route
 * says which token it needs in one word. coordinator/api/openapi.test.ts lints
 * the served document with Redocly's recommended rules (0 errors) and fails
 * on any route under /api/ that is served but not documented, or documented
 * but not served.
 */
import { listDatasets } from '../../shared/data/registry.ts';
import { jobConfigJsonSchema } from '../config.ts';

/** Who may call a route: anyone, a reader (read or admin token, when the coordinator has a read token), or the admin. */
export type Access = 'open' | 'read' | 'admin' | 'worker' | 'session';

const SECURITY: Record<Access, Record<string, string[]>[]> = {
  // Probes, Prometheus and browser workers: never a token.
  open: [],
  // Reading takes the read or the admin token once the coordinator has a read token ({} is the open case without one).
  read: [{ bearer: [] }, { tokenQuery: [] }, {}],
  // Admin actions take the admin token in the Authorization header only: a URL ends up in logs and histories.
  admin: [{ bearer: [] }],
  // Lending a NATS identity takes the shared worker token.
  worker: [{ bearer: [] }],
  // Dataset examples take a connected worker's session credential.
  session: [{ workerSession: [] }],
};

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown) => ({ content: { 'application/json': { schema } } });
const bytes = (type: string) => ({ content: { [type]: { schema: { type: 'string', contentMediaType: type } } } });
const error = { $ref: '#/components/responses/Error' };
const notFound = { $ref: '#/components/responses/NotFound' };
const jobId = { name: 'id', in: 'path', required: true, description: 'the job id', schema: { type: 'string' } };
const job = { description: 'the job', ...json(ref('Job')) };

interface OperationSpec {
  operationId: string;
  summary: string;
  access: Access;
  parameters?: unknown[];
  requestBody?: unknown;
  responses: Record<string, unknown>;
}

/** One documented operation: its security and its 401 answer follow from `access`. */
export function operation({ access, responses, ...rest }: OperationSpec) {
  return {
    ...rest,
    security: SECURITY[access],
    responses: access === 'open' ? responses : { ...responses, 401: { $ref: '#/components/responses/Unauthorized' } },
  };
}

/** The sample-file and model-file routes answer 404 with NOT_READY until the job has written them. */
const outputNotFound = { description: 'UNKNOWN_JOB (no such job), or NOT_READY (not written yet: ask again later)', ...json(ref('Error')) };
const tokenId = { name: 'tokenId', in: 'path', required: true, description: 'the join token id', schema: { type: 'string' } };
const joinToken = (description: string) => ({ description, ...json(ref('JoinToken')) });
const workerId = { name: 'workerId', in: 'path', required: true, description: 'the worker id', schema: { type: 'string' } };
const trustAnswer = {
  description: "the worker's trust after the action",
  ...json({
    type: 'object',
    properties: {
      id: { type: 'string' },
      trust: { type: 'number' },
      quarantined: { type: 'boolean' },
      banned: { type: 'boolean' },
      worker: { oneOf: [ref('Worker'), { type: 'null' }] },
    },
  }),
};

export const openApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'Tessera coordinator API',
    version: '1',
    description:
      'Create and steer training jobs, watch them, and download their outputs. Admin actions need the admin token in the Authorization header (Bearer …), never in the URL; reading is open unless the coordinator was started with a read token, which may also come as ?token= (for EventSource, which cannot set headers). Every error has the body {"error": {"code", "message", "field"}}.',
  },
  // Relative: the coordinator that serves this document, wherever it is reached (loopback, ingress, port-forward).
  servers: [{ url: '/', description: 'this coordinator' }],
  components: {
    securitySchemes: {
      bearer: { type: 'http', scheme: 'bearer', description: 'the admin token; for reading, the read token; for lending a NATS identity, the worker token' },
      tokenQuery: {
        type: 'apiKey',
        in: 'query',
        name: 'token',
        description: 'the read token as ?token=, for EventSource and links, which cannot set headers (never the admin token)',
      },
      workerSession: {
        type: 'http',
        scheme: 'bearer',
        bearerFormat: '<workerId>.<dataToken>',
        description: 'a connected worker session: the worker id and data token of its welcome',
      },
    },
    schemas: {
      Error: {
        type: 'object',
        required: ['error'],
        properties: {
          error: {
            type: 'object',
            required: ['code', 'message'],
            properties: {
              code: { type: 'string', description: 'an ErrorCode (shared/protocol/errors.ts)' },
              message: { type: 'string' },
              field: { type: 'string', description: 'the dotted path of the field at fault' },
            },
          },
        },
      },
      JobConfig: {
        ...jobConfigJsonSchema({ resolved: true }),
        description: 'the resolved job config (its type: shared/api/job-config.ts; its defaults: coordinator/config.ts), saved in every checkpoint',
      },
      JobConfigInput: {
        ...jobConfigJsonSchema({ resolved: false }),
        description: 'a partial job config: absent keys take their defaults, unknown keys are refused',
      },
      Job: {
        type: 'object',
        description: 'a job (shared/api/jobs.ts)',
        required: ['id', 'status', 'round', 'version', 'samplesSeen', 'config', 'data', 'workers', 'lastRound', 'quality', 'diverged'],
        properties: {
          id: { type: 'string' },
          status: { enum: ['waiting', 'running', 'paused', 'finished', 'stopped'] },
          round: { type: 'integer', description: 'the next round (rounds count from 0, as the wire and the progress line do)' },
          version: { type: 'integer', description: 'training steps applied' },
          samplesSeen: { type: 'integer' },
          config: ref('JobConfig'),
          data: {
            type: 'object',
            description: "the dataset's images as the model is built for them (a folder dataset's classes are its subfolders)",
            required: ['imageShape', 'classes', 'classNames'],
            properties: {
              imageShape: { type: 'array', items: { type: 'integer' }, minItems: 3, maxItems: 3, description: '[height, width, channels]' },
              classes: { type: 'integer', description: '0 for unlabelled images' },
              classNames: { type: 'array', items: { type: 'string' } },
            },
          },
          workers: { type: 'array', items: ref('Worker') },
          lastRound: { oneOf: [ref('Round'), { type: 'null' }] },
          diverged: {
            oneOf: [
              {
                type: 'object',
                required: ['round', 'message'],
                properties: { round: { type: 'integer' }, message: { type: 'string' } },
                description:
                  'the job paused itself: every update of its last rounds was refused for its norm or non-finite values; the message says how to go on',
              },
              { type: 'null' },
            ],
          },
          quality: {
            type: 'object',
            description: 'sample quality scored in the background every output.evalEvery training steps (docs/architecture.md)',
            required: ['latest', 'scored', 'skipped', 'failed', 'running'],
            properties: {
              latest: { oneOf: [ref('Quality'), { type: 'null' }], description: 'the most recent scoring' },
              scored: { type: 'integer', description: 'scorings done since this coordinator started' },
              skipped: { type: 'integer', description: 'scorings not started because the previous one still ran (they never queue)' },
              failed: { type: 'integer' },
              running: { type: 'boolean', description: 'a scoring runs now' },
            },
          },
        },
      },
      Quality: {
        type: 'object',
        description:
          "a quality line of the round log: the evaluator's report on output.evalSamples samples of the sampling weights (the EMA where the model keeps one), scored against the job's held-out digits",
        required: [
          'kind',
          'round',
          'version',
          'samplesSeen',
          'wallMs',
          'closedAt',
          'dataset',
          'count',
          'frechet',
          'frechetFloor',
          'precision',
          'recall',
          'recognisable',
          'coverageEntropy',
          'ms',
        ],
        properties: {
          kind: { const: 'quality' },
          round: { type: 'integer', description: 'the round whose closing made the scoring due' },
          version: { type: 'integer', description: 'the weights version scored' },
          samplesSeen: { type: 'integer' },
          wallMs: { type: 'integer', description: "ms from the job's first round to the weights scored" },
          closedAt: { type: 'string', format: 'date-time', description: 'when the weights scored were current' },
          dataset: { type: 'string' },
          count: { type: 'integer', description: 'samples scored' },
          frechet: { type: 'number', description: "Fréchet distance on the classifier's penultimate features, samples vs held-out digits (lower is better)" },
          frechetFloor: { type: 'number', description: 'the same distance for as many real training digits: the best a model can score at this count' },
          precision: { type: 'number', minimum: 0, maximum: 1, description: 'k-NN manifold precision (k = 3)' },
          recall: { type: 'number', minimum: 0, maximum: 1, description: 'k-NN manifold recall (k = 3)' },
          recognisable: { type: 'number', minimum: 0, maximum: 1, description: 'share of samples whose top class probability is above 0.9' },
          coverageEntropy: { type: 'number', minimum: 0, maximum: 1, description: 'entropy of the predicted classes over log(classes)' },
          labelAgreement: { type: 'number', minimum: 0, maximum: 1, description: 'conditional models: share classified as the label asked for' },
          cas: { type: 'number', minimum: 0, maximum: 1, description: 'conditional models: classification accuracy score' },
          reconstructionRecognisable: {
            type: 'number',
            minimum: 0,
            maximum: 1,
            description: 'autoencoders: recognisable share of reconstructions of held-out digits',
          },
          reconstructionAgreement: {
            type: 'number',
            minimum: 0,
            maximum: 1,
            description: "autoencoders: share of reconstructions classified as the original's label",
          },
          ms: { type: 'number', description: 'wall time the scoring took' },
        },
      },
      Worker: {
        type: 'object',
        description: "a worker's row (shared/api/workers.ts)",
        required: [
          'id',
          'jobId',
          'kind',
          'backend',
          'device',
          'name',
          'connected',
          'transport',
          'samplesPerSecond',
          'samplesContributed',
          'updatesAccepted',
          'updatesRejected',
          'weightFetches',
          'lastSeenAt',
          'trust',
          'quarantined',
          'banned',
        ],
        properties: {
          id: { type: 'string' },
          jobId: { type: 'string' },
          kind: { enum: ['node', 'browser'] },
          backend: { type: 'string' },
          device: { type: 'string' },
          name: { type: 'string' },
          connected: { type: 'boolean' },
          transport: { type: ['string', 'null'] },
          samplesPerSecond: { type: 'number' },
          samplesContributed: { type: 'integer' },
          updatesAccepted: { type: 'integer' },
          updatesRejected: { type: 'integer' },
          weightFetches: { type: 'integer' },
          lastSeenAt: { type: 'string', format: 'date-time' },
          trust: { type: 'number', minimum: 0, maximum: 1 },
          quarantined: { type: 'boolean', description: 'its updates are acknowledged, never aggregated' },
          banned: { type: 'boolean' },
        },
      },
      JoinToken: {
        type: 'object',
        required: ['id', 'jobId', 'label', 'createdAt', 'expiresAt', 'revokedAt', 'expired', 'workers'],
        properties: {
          id: { type: 'string', description: 'the token id (its jti): what revoking names' },
          jobId: { type: 'string' },
          label: { type: 'string' },
          createdAt: { type: 'string', format: 'date-time' },
          expiresAt: { type: 'string', format: 'date-time' },
          revokedAt: { type: ['string', 'null'], format: 'date-time' },
          expired: { type: 'boolean' },
          workers: { type: 'integer', description: 'workers connected now that joined with it' },
          token: { type: 'string', description: 'the signed token itself: in the answer to its creation only' },
          url: { type: 'string', description: 'the join link for browsers (creation only)' },
          disconnected: { type: 'integer', description: 'workers disconnected by the revocation (DELETE only)' },
        },
      },
      Round: {
        type: 'object',
        description: 'a closed round: a line of the round log (shared/api/round-log.ts)',
        required: [
          'round',
          'version',
          'applied',
          'durationMs',
          'samples',
          'samplesPerSecond',
          'losses',
          'updates',
          'coordinatorTensors',
          'late',
          'deadlineMs',
          'failures',
          'excluded',
          'verification',
          'outliers',
          'closedAt',
        ],
        properties: {
          round: { type: 'integer' },
          version: { type: 'integer', description: 'the weights version the round trained on; an applied round stepped it once' },
          applied: { type: 'boolean' },
          durationMs: { type: 'integer' },
          deadlineMs: { type: 'integer', description: 'how long the round would wait at most' },
          samples: { type: 'integer' },
          samplesPerSecond: { type: 'number' },
          losses: { type: 'object', additionalProperties: { type: 'number' } },
          coordinatorTensors: { type: 'integer', description: 'live tfjs tensors on the coordinator when the round closed (leak watch)' },
          updates: {
            type: 'array',
            description: 'the updates the round aggregated',
            items: {
              type: 'object',
              required: ['workerId', 'samples', 'computeMs', 'finishMs', 'bytes', 'shards'],
              properties: {
                workerId: { type: 'string' },
                samples: { type: 'integer' },
                computeMs: { type: 'integer', description: 'what the worker reports it spent computing' },
                finishMs: { type: 'integer', description: "assignment sent to update received, on the coordinator's clock" },
                bytes: { type: 'integer' },
                shards: { type: 'integer', description: 'data shards the batch was drawn from' },
                workerTensors: { type: 'integer', description: 'live tfjs tensors the worker reported' },
              },
            },
          },
          late: {
            type: 'array',
            description: 'updates of earlier rounds applied here, with their discounted weight',
            items: {
              type: 'object',
              required: ['workerId', 'round', 'samples', 'weight'],
              properties: { workerId: { type: 'string' }, round: { type: 'integer' }, samples: { type: 'integer' }, weight: { type: 'number' } },
            },
          },
          failures: {
            type: 'array',
            description: 'workers assigned work whose update does not count, and why',
            items: {
              type: 'object',
              required: ['workerId', 'code', 'message'],
              properties: {
                workerId: { type: 'string' },
                code: { type: 'string', description: 'an ErrorCode, LEFT or DEADLINE' },
                message: { type: 'string' },
              },
            },
          },
          excluded: {
            type: 'array',
            description: 'accepted updates the aggregate left out',
            items: {
              type: 'object',
              required: ['workerId', 'reason'],
              properties: { workerId: { type: 'string' }, reason: { enum: ['duplicate', 'disputed', 'quarantined'] } },
            },
          },
          verification: {
            type: 'array',
            description: "the round's duplicate pairs as compared",
            items: {
              type: 'object',
              required: ['original', 'copy', 'outcome', 'distance', 'tensor'],
              properties: {
                original: { type: 'string', description: 'the worker whose assignment it was' },
                copy: { type: 'string', description: 'the worker given a copy of it' },
                outcome: { enum: ['agree', 'disputed', 'unresolved'] },
                distance: { type: ['number', 'null'], description: "relative L2 distance of the pair's tensor; null when the shapes differ" },
                tensor: { type: 'string' },
              },
            },
          },
          outliers: {
            type: 'array',
            description: 'updates the aggregation rules clipped, trimmed or found beyond their radius',
            items: {
              type: 'object',
              required: ['workerId', 'round', 'networks', 'deviation'],
              properties: {
                workerId: { type: 'string' },
                round: { type: 'integer' },
                networks: { type: 'array', items: { type: 'string' } },
                deviation: { type: 'number', description: "its largest distance to a flagged network's result, in clip radii" },
              },
            },
          },
          closedAt: { type: 'string', format: 'date-time' },
        },
      },
    },
    responses: {
      Error: { description: 'a typed error', ...json(ref('Error')) },
      NotFound: { description: 'no such job (UNKNOWN_JOB, field id)', ...json(ref('Error')) },
      Unauthorized: { description: 'missing or wrong token (UNAUTHORIZED, field authorization)', ...json(ref('Error')) },
    },
  },
  paths: {
    '/health': {
      get: operation({
        operationId: 'getHealth',
        summary: 'liveness and readiness',
        access: 'open',
        responses: { 200: { description: 'ok', ...json({ type: 'object', properties: { ok: { type: 'boolean' }, jobs: { type: 'integer' } } }) } },
      }),
    },
    '/metrics': {
      get: operation({
        operationId: 'getMetrics',
        summary: 'Prometheus metrics',
        access: 'open',
        responses: { 200: { description: 'text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } } },
      }),
    },
    '/api/openapi.json': {
      get: operation({
        operationId: 'getOpenApi',
        summary: 'this description',
        access: 'open',
        responses: { 200: { description: 'OpenAPI 3.1', ...json({ type: 'object' }) } },
      }),
    },
    '/api/jobs': {
      get: operation({
        operationId: 'listJobs',
        summary: 'list jobs',
        access: 'read',
        responses: { 200: { description: 'the jobs', ...json({ type: 'object', properties: { jobs: { type: 'array', items: ref('Job') } } }) } },
      }),
      post: operation({
        operationId: 'createJob',
        summary: 'create a job from a config (defaults fill what it leaves out; resumes from a checkpoint in its output folder)',
        access: 'admin',
        requestBody: { required: true, ...json(ref('JobConfigInput')) },
        responses: { 201: { ...job, description: 'created' }, 400: error, 409: error },
      }),
    },
    '/api/jobs/{id}': {
      get: operation({
        operationId: 'getJob',
        summary: 'a job: state, config, workers, last round',
        access: 'read',
        parameters: [jobId],
        responses: { 200: job, 404: notFound },
      }),
    },
    '/api/jobs/{id}/rounds': {
      get: operation({
        operationId: 'listRounds',
        summary: 'the most recent rounds',
        access: 'read',
        parameters: [jobId, { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 2000, default: 200 } }],
        responses: {
          200: { description: 'the rounds, oldest first', ...json({ type: 'object', properties: { rounds: { type: 'array', items: ref('Round') } } }) },
          404: notFound,
        },
      }),
    },
    '/api/jobs/{id}/quality': {
      get: operation({
        operationId: 'listQuality',
        summary: 'the most recent sample-quality scorings (the quality lines of the round log)',
        access: 'read',
        parameters: [jobId, { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 2000, default: 200 } }],
        responses: {
          200: { description: 'the scorings, oldest first', ...json({ type: 'object', properties: { quality: { type: 'array', items: ref('Quality') } } }) },
          404: notFound,
        },
      }),
    },
    '/api/jobs/{id}/events': {
      get: operation({
        operationId: 'streamJobEvents',
        summary: 'live events (Server-Sent Events): snapshot, round, workers, status, samples, quality',
        access: 'read',
        parameters: [jobId],
        responses: {
          200: {
            description:
              "an event stream; each event's data is JSON (typed in shared/api/events.ts): `snapshot` first and on every reconnect, {job: Job, rounds: [Round], quality: [Quality]}; `round`, a Round; `workers`, [Worker]; `status`, {status, round, version, diverged?}; `samples`, {round, url}; `quality`, a Quality; `keepalive`, {} every 15 s",
            content: { 'text/event-stream': { schema: { type: 'string' } } },
          },
          404: notFound,
        },
      }),
    },
    '/api/jobs/{id}/pause': {
      post: operation({
        operationId: 'pauseJob',
        summary: 'finish the open round, start no new one',
        access: 'admin',
        parameters: [jobId],
        responses: { 200: job, 404: notFound, 409: error },
      }),
    },
    '/api/jobs/{id}/resume': {
      post: operation({
        operationId: 'resumeJob',
        summary: 'start rounds again',
        access: 'admin',
        parameters: [jobId],
        responses: { 200: job, 404: notFound, 409: error },
      }),
    },
    '/api/jobs/{id}/stop': {
      post: operation({
        operationId: 'stopJob',
        summary: 'end training: close the open round, write the final outputs',
        access: 'admin',
        parameters: [jobId],
        responses: { 200: job, 404: notFound },
      }),
    },
    '/api/jobs/{id}/samples': {
      get: operation({
        operationId: 'listSamples',
        summary: 'the sample grids written so far',
        access: 'read',
        parameters: [jobId],
        responses: {
          200: {
            description: 'the grids by training step',
            ...json({
              type: 'object',
              properties: { samples: { type: 'array', items: { type: 'object', properties: { round: { type: 'integer' }, url: { type: 'string' } } } } },
            }),
          },
          404: notFound,
        },
      }),
    },
    '/api/jobs/{id}/workers/{workerId}/release': {
      post: operation({
        operationId: 'releaseWorker',
        summary: 'release a worker from quarantine (or a ban): its trust starts over',
        access: 'admin',
        parameters: [jobId, workerId],
        responses: { 200: trustAnswer, 404: notFound },
      }),
    },
    '/api/jobs/{id}/workers/{workerId}/ban': {
      post: operation({
        operationId: 'banWorker',
        summary: 'ban a worker: disconnected, its id refused at hello, never aggregated',
        access: 'admin',
        parameters: [jobId, workerId],
        responses: { 200: trustAnswer, 404: notFound },
      }),
    },
    '/api/jobs/{id}/samples/{file}': {
      get: operation({
        operationId: 'getSampleGrid',
        summary: 'a sample grid (round-NNNNNN.png or latest.png)',
        access: 'read',
        parameters: [jobId, { name: 'file', in: 'path', required: true, schema: { type: 'string', pattern: '^(round-\\d{6}|latest)\\.png$' } }],
        responses: { 200: { description: 'the grid', ...bytes('image/png') }, 404: outputNotFound },
      }),
    },
    '/api/jobs/{id}/model/{file}': {
      get: operation({
        operationId: 'getExportedModel',
        summary: 'the exported generator for tf.loadLayersModel (model.json, weights.bin)',
        access: 'read',
        parameters: [jobId, { name: 'file', in: 'path', required: true, schema: { enum: ['model.json', 'weights.bin'] } }],
        responses: {
          200: {
            description: 'the file',
            content: {
              'application/json': { schema: { type: 'object' } },
              'application/octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } },
            },
          },
          404: outputNotFound,
        },
      }),
    },
    '/api/jobs/{id}/checkpoint': {
      get: operation({
        operationId: 'getCheckpoint',
        summary: 'the last checkpoint (msgpack)',
        access: 'read',
        parameters: [jobId],
        responses: { 200: { description: 'the checkpoint file', ...bytes('application/x-msgpack') }, 404: outputNotFound },
      }),
    },
    '/api/jobs/{id}/weights': {
      get: operation({
        operationId: 'getWeights',
        summary: 'the current master weights (f32 codec bytes; version and hash in x-tessera-* headers)',
        access: 'read',
        parameters: [jobId],
        responses: { 200: { description: 'the weights', ...bytes('application/x-msgpack') }, 404: notFound },
      }),
    },
    '/api/jobs/{id}/join-tokens': {
      post: operation({
        operationId: 'createJoinToken',
        summary: 'issue a join token for the job: a signed link workers and browsers join with, until it expires or is revoked (the token is shown once)',
        access: 'admin',
        parameters: [jobId],
        requestBody: json({
          type: 'object',
          additionalProperties: false,
          properties: { ttlSeconds: { type: 'integer', minimum: 60, maximum: 2_592_000, default: 86_400 }, label: { type: 'string', maxLength: 200 } },
        }),
        responses: { 201: joinToken('the token, its join link and its record'), 400: error, 404: notFound },
      }),
      get: operation({
        operationId: 'listJoinTokens',
        summary: "the job's join tokens, newest first (never the tokens themselves)",
        access: 'admin',
        parameters: [jobId],
        responses: {
          200: { description: 'the records', ...json({ type: 'object', properties: { tokens: { type: 'array', items: ref('JoinToken') } } }) },
          404: notFound,
        },
      }),
    },
    '/api/jobs/{id}/join-tokens/{tokenId}': {
      delete: operation({
        operationId: 'revokeJoinToken',
        summary: 'revoke a join token: it lets no one in any more, and the workers that joined with it are disconnected',
        access: 'admin',
        parameters: [jobId, tokenId],
        responses: { 200: joinToken('the revoked record, with how many workers were disconnected'), 404: notFound },
      }),
    },
    '/api/nats/worker-identity': {
      post: operation({
        operationId: 'lendNatsWorkerIdentity',
        summary:
          'lend this worker process its own NATS identity (an nkey seed from the pool deploy/nats-users.ts made, allowed to publish only on its own subjects), for the shared worker token',
        access: 'worker',
        responses: {
          200: {
            description: 'the seed to authenticate with, and the connection id its subjects carry (its public key)',
            ...json({ type: 'object', properties: { seed: { type: 'string' }, connectionId: { type: 'string' } } }),
          },
          404: { description: 'this coordinator lends no identities (no TESSERA_NATS_WORKER_SEEDS_FILE)', ...json(ref('Error')) },
          503: { description: 'every identity of the pool is in use', ...json(ref('Error')) },
        },
      }),
    },
    '/api/datasets/{id}/examples': {
      get: operation({
        operationId: 'getDatasetExamples',
        summary:
          "training examples by index, as exact float32, for a connected worker session (browser workers): only indices of the worker's open assignment (or of a closed one a late update may still fill)",
        access: 'session',
        parameters: [
          { name: 'id', in: 'path', required: true, schema: { enum: listDatasets().map((dataset) => dataset.id) } },
          { name: 'indices', in: 'query', required: true, schema: { type: 'string', description: 'comma-separated' } },
        ],
        responses: {
          200: { description: 'the examples', ...bytes('application/x-msgpack') },
          400: error,
          403: { description: "an index outside the worker's assignments (NOT_ASSIGNED, field indices[i])", ...json(ref('Error')) },
          404: error,
        },
      }),
    },
    '/api/shards/{hash}': {
      get: operation({
        operationId: 'getDatasetShard',
        summary:
          'one shard of a folder dataset (images) by the sha256 of its bytes, as the welcome lists them, for a connected worker session of ' +
          'that job: immutable, so workers cache it and check its hash',
        access: 'session',
        parameters: [{ name: 'hash', in: 'path', required: true, schema: { type: 'string', pattern: '^[0-9a-f]{64}$' } }],
        responses: {
          200: { description: 'the shard: its examples’ indices, labels and pixels as bytes (msgpack)', ...bytes('application/x-msgpack') },
          404: { description: "no shard of that hash in the worker's job", ...json(ref('Error')) },
        },
      }),
    },
  },
};
