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
import { jobConfigJsonSchema } from '../config.ts';

/** Who may call a route: anyone, a reader (read or admin token, when the coordinator has a read token), or the admin. */
export type Access = 'open' | 'read' | 'admin';

const SECURITY: Record<Access, Record<string, string[]>[]> = {
  // Probes, Prometheus and browser workers: never a token.
  open: [],
  // Reading takes the read or the admin token once the coordinator has a read token ({} is the open case without one).
  read: [{ bearer: [] }, { tokenQuery: [] }, {}],
  admin: [{ bearer: [] }, { tokenQuery: [] }],
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

export const openApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'Tessera coordinator API',
    version: '1',
    description:
      'Create and steer training jobs, watch them, and download their outputs. Admin actions need the admin token (Authorization: Bearer …, or ?token=); reading is open unless the coordinator was started with a read token (--read-token), then it takes the read or the admin token. Every error has the body {"error": {"code", "message", "field"}}.',
  },
  // Relative: the coordinator that serves this document, wherever it is reached (loopback, ingress, port-forward).
  servers: [{ url: '/', description: 'this coordinator' }],
  components: {
    securitySchemes: {
      bearer: { type: 'http', scheme: 'bearer', description: 'the admin token, or for reading the read token' },
      tokenQuery: { type: 'apiKey', in: 'query', name: 'token', description: 'the same token as ?token=, for EventSource and links, which cannot set headers' },
    },
    schemas: {
      Error: {
        type: 'object',
        required: ['error'],
        properties: {
          error: {
            type: 'object',
            required: ['code', 'message'],
            properties: { code: { type: 'string', description: 'an ErrorCode (shared/protocol/errors.ts)' }, message: { type: 'string' }, field: { type: 'string', description: 'the dotted path of the field at fault' } },
          },
        },
      },
      JobConfig: { ...jobConfigJsonSchema({ resolved: true }), description: 'the resolved job config (coordinator/config.ts), saved in every checkpoint' },
      JobConfigInput: { ...jobConfigJsonSchema({ resolved: false }), description: 'a partial job config: absent keys take their defaults, unknown keys are refused' },
      Job: {
        type: 'object',
        required: ['id', 'status', 'round', 'version', 'samplesSeen', 'config', 'workers', 'lastRound'],
        properties: {
          id: { type: 'string' },
          status: { enum: ['waiting', 'running', 'paused', 'finished', 'stopped'] },
          round: { type: 'integer', description: 'the next round (rounds count from 0, as the wire and the progress line do)' },
          version: { type: 'integer', description: 'training steps applied' },
          samplesSeen: { type: 'integer' },
          config: ref('JobConfig'),
          workers: { type: 'array', items: ref('Worker') },
          lastRound: { oneOf: [ref('Round'), { type: 'null' }] },
        },
      },
      Worker: {
        type: 'object',
        properties: {
          id: { type: 'string' }, jobId: { type: 'string' }, kind: { enum: ['node', 'browser'] }, backend: { type: 'string' }, device: { type: 'string' }, name: { type: 'string' },
          connected: { type: 'boolean' }, transport: { type: ['string', 'null'] }, samplesPerSecond: { type: 'number' }, samplesContributed: { type: 'integer' },
          updatesAccepted: { type: 'integer' }, updatesRejected: { type: 'integer' }, weightFetches: { type: 'integer' }, lastSeenAt: { type: 'string', format: 'date-time' },
        },
      },
      Round: {
        type: 'object',
        properties: {
          round: { type: 'integer' }, version: { type: 'integer' }, applied: { type: 'boolean' }, durationMs: { type: 'integer' }, deadlineMs: { type: 'integer' }, samples: { type: 'integer' },
          samplesPerSecond: { type: 'number' }, losses: { type: 'object', additionalProperties: { type: 'number' } }, coordinatorTensors: { type: 'integer' },
          updates: { type: 'array', items: { type: 'object' } }, late: { type: 'array', items: { type: 'object' } }, failures: { type: 'array', items: { type: 'object' } }, closedAt: { type: 'string', format: 'date-time' },
          outliers: { type: 'array', items: { type: 'object', properties: { workerId: { type: 'string' }, round: { type: 'integer' }, networks: { type: 'array', items: { type: 'string' } }, deviation: { type: 'number' } } } },
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
    '/health': { get: operation({ operationId: 'getHealth', summary: 'liveness and readiness', access: 'open', responses: { 200: { description: 'ok', ...json({ type: 'object', properties: { ok: { type: 'boolean' }, jobs: { type: 'integer' } } }) } } }) },
    '/metrics': { get: operation({ operationId: 'getMetrics', summary: 'Prometheus metrics', access: 'open', responses: { 200: { description: 'text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } } } }) },
    '/api/openapi.json': { get: operation({ operationId: 'getOpenApi', summary: 'this description', access: 'open', responses: { 200: { description: 'OpenAPI 3.1', ...json({ type: 'object' }) } } }) },
    '/api/jobs': {
      get: operation({ operationId: 'listJobs', summary: 'list jobs', access: 'read', responses: { 200: { description: 'the jobs', ...json({ type: 'object', properties: { jobs: { type: 'array', items: ref('Job') } } }) } } }),
      post: operation({
        operationId: 'createJob',
        summary: 'create a job from a config (defaults fill what it leaves out; resumes from a checkpoint in its output folder)',
        access: 'admin',
        requestBody: { required: true, ...json(ref('JobConfigInput')) },
        responses: { 201: { ...job, description: 'created' }, 400: error, 409: error },
      }),
    },
    '/api/jobs/{id}': { get: operation({ operationId: 'getJob', summary: 'a job: state, config, workers, last round', access: 'read', parameters: [jobId], responses: { 200: job, 404: notFound } }) },
    '/api/jobs/{id}/rounds': {
      get: operation({
        operationId: 'listRounds',
        summary: 'the most recent rounds',
        access: 'read',
        parameters: [jobId, { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 2000, default: 200 } }],
        responses: { 200: { description: 'the rounds, oldest first', ...json({ type: 'object', properties: { rounds: { type: 'array', items: ref('Round') } } }) }, 404: notFound },
      }),
    },
    '/api/jobs/{id}/events': {
      get: operation({ operationId: 'streamJobEvents', summary: 'live events (Server-Sent Events): snapshot, round, workers, status, samples', access: 'read', parameters: [jobId], responses: { 200: { description: 'an event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } }, 404: notFound } }),
    },
    '/api/jobs/{id}/pause': { post: operation({ operationId: 'pauseJob', summary: 'finish the open round, start no new one', access: 'admin', parameters: [jobId], responses: { 200: job, 404: notFound, 409: error } }) },
    '/api/jobs/{id}/resume': { post: operation({ operationId: 'resumeJob', summary: 'start rounds again', access: 'admin', parameters: [jobId], responses: { 200: job, 404: notFound, 409: error } }) },
    '/api/jobs/{id}/stop': { post: operation({ operationId: 'stopJob', summary: 'end training: close the open round, write the final outputs', access: 'admin', parameters: [jobId], responses: { 200: job, 404: notFound } }) },
    '/api/jobs/{id}/samples': {
      get: operation({
        operationId: 'listSamples',
        summary: 'the sample grids written so far',
        access: 'read',
        parameters: [jobId],
        responses: { 200: { description: 'the grids by training step', ...json({ type: 'object', properties: { samples: { type: 'array', items: { type: 'object', properties: { round: { type: 'integer' }, url: { type: 'string' } } } } } }) }, 404: notFound },
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
        responses: { 200: { description: 'the file', content: { 'application/json': { schema: { type: 'object' } }, 'application/octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } } }, 404: outputNotFound },
      }),
    },
    '/api/jobs/{id}/checkpoint': {
      get: operation({ operationId: 'getCheckpoint', summary: 'the last checkpoint (msgpack)', access: 'read', parameters: [jobId], responses: { 200: { description: 'the checkpoint file', ...bytes('application/x-msgpack') }, 404: outputNotFound } }),
    },
    '/api/jobs/{id}/weights': {
      get: operation({ operationId: 'getWeights', summary: 'the current master weights (f32 codec bytes; version and hash in x-tessera-* headers)', access: 'read', parameters: [jobId], responses: { 200: { description: 'the weights', ...bytes('application/x-msgpack') }, 404: notFound } }),
    },
    '/api/datasets/{id}/examples': {
      get: operation({
        operationId: 'getDatasetExamples',
        summary: 'training examples by index, as exact float32 (for browser workers)',
        access: 'open',
        parameters: [{ name: 'id', in: 'path', required: true, schema: { enum: ['mnist'] } }, { name: 'indices', in: 'query', required: true, schema: { type: 'string', description: 'comma-separated' } }],
        responses: { 200: { description: 'the examples', ...bytes('application/x-msgpack') }, 400: error, 404: error },
      }),
    },
  },
};
