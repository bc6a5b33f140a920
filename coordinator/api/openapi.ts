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
/** A typed error with its own description. */
const typedError = (description: string) => ({ description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } });
const session = [{ workerSession: [] }];
const tokenId = { name: 'tokenId', in: 'path', required: true, schema: { type: 'string' } };
const joinToken = { content: { 'application/json': { schema: { $ref: '#/components/schemas/JoinToken' } } } };

export const openApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'Tessera coordinator API',
    version: '1',
    description:
      'Create and steer training jobs, watch them, and download their outputs. Admin actions need the admin token in the Authorization header (Bearer …), never in the URL; reading is open unless the coordinator was started with a read token, which may also come as ?token= (for EventSource, which cannot set headers). Every error has the body {"error": {"code", "message", "field"}}.',
  },
  components: {
    securitySchemes: {
      bearer: { type: 'http', scheme: 'bearer' },
      workerSession: { type: 'http', scheme: 'bearer', bearerFormat: '<workerId>.<dataToken>', description: 'a connected worker session: the worker id and data token of its welcome' },
    },
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
        },
      },
      JoinToken: {
        type: 'object',
        required: ['id', 'jobId', 'label', 'createdAt', 'expiresAt', 'revokedAt', 'expired', 'workers'],
        properties: {
          id: { type: 'string', description: 'the token id (its jti): what revoking names' },
          jobId: { type: 'string' }, label: { type: 'string' }, createdAt: { type: 'string', format: 'date-time' }, expiresAt: { type: 'string', format: 'date-time' },
          revokedAt: { type: ['string', 'null'], format: 'date-time' }, expired: { type: 'boolean' }, workers: { type: 'integer', description: 'workers connected now that joined with it' },
          token: { type: 'string', description: 'the signed token itself: in the answer to its creation only' },
          url: { type: 'string', description: 'the join link for browsers (creation only)' },
          disconnected: { type: 'integer', description: 'workers disconnected by the revocation (DELETE only)' },
        },
      },
      Round: {
        type: 'object',
        properties: {
          round: { type: 'integer' }, version: { type: 'integer' }, applied: { type: 'boolean' }, durationMs: { type: 'integer' }, samples: { type: 'integer' },
          samplesPerSecond: { type: 'number' }, losses: { type: 'object', additionalProperties: { type: 'number' } },
          updates: { type: 'array', items: { type: 'object' } }, failures: { type: 'array', items: { type: 'object' } }, closedAt: { type: 'string', format: 'date-time' },
        },
      },
    },
    responses: {
      Error: typedError('a typed error'),
      Unauthorized: typedError('missing or wrong token (code UNAUTHORIZED, field authorization)'),
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
    '/api/jobs/{id}/join-tokens': {
      post: {
        summary: 'issue a join token for the job: a signed link workers and browsers join with, until it expires or is revoked (the token is shown once)',
        security: admin,
        parameters: [jobId],
        requestBody: { content: { 'application/json': { schema: { type: 'object', additionalProperties: false, properties: { ttlSeconds: { type: 'integer', minimum: 60, maximum: 2_592_000, default: 86_400 }, label: { type: 'string', maxLength: 200 } } } } } },
        responses: { 201: { description: 'the token, its join link and its record', ...joinToken }, 400: error, 401: unauthorized, 404: error },
      },
      get: { summary: "the job's join tokens, newest first (never the tokens themselves)", security: admin, parameters: [jobId], responses: { 200: { description: '{ tokens: JoinToken[] }' }, 401: unauthorized, 404: error } },
    },
    '/api/jobs/{id}/join-tokens/{tokenId}': {
      delete: {
        summary: 'revoke a join token: it lets no one in any more, and the workers that joined with it are disconnected',
        security: admin,
        parameters: [jobId, tokenId],
        responses: { 200: { description: 'the revoked record, with how many workers were disconnected', ...joinToken }, 401: unauthorized, 404: error },
      },
    },
    '/api/jobs/{id}/checkpoint': { get: { summary: 'the last checkpoint (msgpack)', parameters: [jobId], responses: { 200: { description: 'application/x-msgpack' }, 404: error } } },
    '/api/jobs/{id}/weights': { get: { summary: 'the current master weights (f32 codec bytes; version and hash in x-tessera-* headers)', parameters: [jobId], responses: { 200: { description: 'application/x-msgpack' }, 404: error } } },
    '/api/nats/worker-identity': {
      post: {
        summary: "lend this worker process its own NATS identity (an nkey seed from the pool deploy/nats-users.ts made, allowed to publish only on its own subjects), for the shared worker token",
        security: [{ bearer: [] }],
        responses: {
          200: { description: '{ seed, connectionId }: the seed to authenticate with, and the connection id its subjects carry (its public key)' },
          401: unauthorized,
          404: typedError('this coordinator lends no identities (no TESSERA_NATS_WORKER_SEEDS_FILE)'),
          503: typedError('every identity of the pool is in use'),
        },
      },
    },
    '/api/datasets/{id}/examples': {
      get: {
        summary: "training examples by index, as exact float32, for a connected worker session (browser workers): only indices of the worker's open assignment (or of a closed one a late update may still fill)",
        security: session,
        parameters: [{ name: 'id', in: 'path', required: true, schema: { enum: ['mnist'] } }, { name: 'indices', in: 'query', required: true, schema: { type: 'string', description: 'comma-separated' } }],
        responses: { 200: { description: 'application/x-msgpack' }, 400: error, 401: unauthorized, 403: typedError("an index outside the worker's assignments (code NOT_ASSIGNED, field indices[i])"), 404: error },
      },
    },
  },
} as const;
