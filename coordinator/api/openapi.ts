/**
 * The OpenAPI 3.1 description of the coordinator's HTTP API, served at
 * /api/openapi.json. Kept beside the routes (coordinator/api/jobs.ts); a test
 * checks every route here answers.
 */
const error = { $ref: '#/components/responses/Error' };
const unauthorized = { $ref: '#/components/responses/Unauthorized' };
const jobId = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };
const job = { content: { 'application/json': { schema: { $ref: '#/components/schemas/Job' } } } };
const admin = [{ bearer: [] }];
const workerId = { name: 'workerId', in: 'path', required: true, schema: { type: 'string' } };
const trustAnswer = { description: '{ id, trust, quarantined, banned, worker: Worker | null }' };

export const openApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'Tessera coordinator API',
    version: '1',
    description:
      'Create and steer training jobs, watch them, and download their outputs. Admin actions need the admin token (Authorization: Bearer …); reading is open unless the coordinator was started with a read token. Every error has the body {"error": {"code", "message", "field"}}.',
  },
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    schemas: {
      Error: {
        type: 'object',
        required: ['error'],
        properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' }, field: { type: 'string' } } } },
      },
      Job: {
        type: 'object',
        required: ['id', 'status', 'round', 'version', 'samplesSeen', 'config', 'workers'],
        properties: {
          id: { type: 'string' },
          status: { enum: ['waiting', 'running', 'paused', 'finished', 'stopped'] },
          round: { type: 'integer' },
          version: { type: 'integer', description: 'training steps applied' },
          samplesSeen: { type: 'integer' },
          config: { type: 'object', description: 'the resolved job config (see coordinator/config.ts)' },
          workers: { type: 'array', items: { $ref: '#/components/schemas/Worker' } },
          lastRound: { oneOf: [{ $ref: '#/components/schemas/Round' }, { type: 'null' }] },
        },
      },
      Worker: {
        type: 'object',
        properties: {
          id: { type: 'string' }, kind: { enum: ['node', 'browser'] }, backend: { type: 'string' }, device: { type: 'string' }, name: { type: 'string' },
          connected: { type: 'boolean' }, transport: { type: ['string', 'null'] }, samplesPerSecond: { type: 'number' }, samplesContributed: { type: 'integer' },
          updatesAccepted: { type: 'integer' }, updatesRejected: { type: 'integer' }, lastSeenAt: { type: 'string', format: 'date-time' },
          trust: { type: 'number', minimum: 0, maximum: 1 }, quarantined: { type: 'boolean', description: 'its updates are acknowledged, never aggregated' }, banned: { type: 'boolean' },
        },
      },
      Round: {
        type: 'object',
        properties: {
          round: { type: 'integer' }, version: { type: 'integer' }, applied: { type: 'boolean' }, durationMs: { type: 'integer' }, samples: { type: 'integer' },
          samplesPerSecond: { type: 'number' }, losses: { type: 'object', additionalProperties: { type: 'number' } },
          updates: { type: 'array', items: { type: 'object' } }, failures: { type: 'array', items: { type: 'object' } }, closedAt: { type: 'string', format: 'date-time' },
          outliers: { type: 'array', items: { type: 'object', properties: { workerId: { type: 'string' }, round: { type: 'integer' }, networks: { type: 'array', items: { type: 'string' } }, deviation: { type: 'number' } } } },
        },
      },
    },
    responses: {
      Error: { description: 'a typed error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
      Unauthorized: { description: 'missing or wrong token (code UNAUTHORIZED, field authorization)', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
    },
  },
  paths: {
    '/health': { get: { summary: 'liveness and readiness', responses: { 200: { description: 'ok' } } } },
    '/metrics': { get: { summary: 'Prometheus metrics', responses: { 200: { description: 'text exposition format' } } } },
    '/api/jobs': {
      get: { summary: 'list jobs', responses: { 200: { description: 'the jobs' }, 401: unauthorized } },
      post: {
        summary: 'create a job from a config (defaults fill what it leaves out; resumes from a checkpoint in its output folder)',
        security: admin,
        requestBody: { required: true, content: { 'application/json': { schema: { type: 'object' } } } },
        responses: { 201: { description: 'created', ...job }, 400: error, 401: unauthorized, 409: error },
      },
    },
    '/api/jobs/{id}': { get: { summary: 'a job: state, config, workers, last round', parameters: [jobId], responses: { 200: { description: 'the job', ...job }, 401: unauthorized, 404: error } } },
    '/api/jobs/{id}/rounds': {
      get: {
        summary: 'the most recent rounds',
        parameters: [jobId, { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 2000, default: 200 } }],
        responses: { 200: { description: '{ rounds: Round[] }' }, 404: error },
      },
    },
    '/api/jobs/{id}/events': { get: { summary: 'live events (Server-Sent Events): snapshot, round, workers, status, samples', parameters: [jobId], responses: { 200: { description: 'text/event-stream' }, 404: error } } },
    '/api/jobs/{id}/pause': { post: { summary: 'finish the open round, start no new one', security: admin, parameters: [jobId], responses: { 200: { description: 'the job', ...job }, 401: unauthorized, 404: error, 409: error } } },
    '/api/jobs/{id}/resume': { post: { summary: 'start rounds again', security: admin, parameters: [jobId], responses: { 200: { description: 'the job', ...job }, 401: unauthorized, 404: error, 409: error } } },
    '/api/jobs/{id}/stop': { post: { summary: 'end training: close the open round, write the final outputs', security: admin, parameters: [jobId], responses: { 200: { description: 'the job', ...job }, 401: unauthorized, 404: error } } },
    '/api/jobs/{id}/workers/{workerId}/release': { post: { summary: 'release a worker from quarantine (or a ban): its trust starts over', security: admin, parameters: [jobId, workerId], responses: { 200: trustAnswer, 401: unauthorized, 404: error } } },
    '/api/jobs/{id}/workers/{workerId}/ban': { post: { summary: 'ban a worker: disconnected, its id refused at hello, never aggregated', security: admin, parameters: [jobId, workerId], responses: { 200: trustAnswer, 401: unauthorized, 404: error } } },
    '/api/jobs/{id}/samples': { get: { summary: 'the sample grids written so far', parameters: [jobId], responses: { 200: { description: '{ samples: { round, url }[] }' }, 404: error } } },
    '/api/jobs/{id}/samples/{file}': {
      get: {
        summary: 'a sample grid (round-NNNNNN.png or latest.png)',
        parameters: [jobId, { name: 'file', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { 200: { description: 'image/png' }, 404: error },
      },
    },
    '/api/jobs/{id}/model/{file}': {
      get: {
        summary: 'the exported generator for tf.loadLayersModel (model.json, weights.bin)',
        parameters: [jobId, { name: 'file', in: 'path', required: true, schema: { enum: ['model.json', 'weights.bin'] } }],
        responses: { 200: { description: 'the file' }, 404: error },
      },
    },
    '/api/jobs/{id}/checkpoint': { get: { summary: 'the last checkpoint (msgpack)', parameters: [jobId], responses: { 200: { description: 'application/x-msgpack' }, 404: error } } },
    '/api/jobs/{id}/weights': { get: { summary: 'the current master weights (f32 codec bytes; version and hash in x-tessera-* headers)', parameters: [jobId], responses: { 200: { description: 'application/x-msgpack' }, 404: error } } },
    '/api/datasets/{id}/examples': {
      get: {
        summary: 'training examples by index, as exact float32 (for browser workers)',
        parameters: [{ name: 'id', in: 'path', required: true, schema: { enum: ['mnist'] } }, { name: 'indices', in: 'query', required: true, schema: { type: 'string', description: 'comma-separated' } }],
        responses: { 200: { description: 'application/x-msgpack' }, 400: error, 404: error },
      },
    },
  },
} as const;
