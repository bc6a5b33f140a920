# syntax=docker/dockerfile:1
# The Tessera coordinator: the Hono app on :8080 (API, /ws, /join, /dashboard,
# /metrics, /health), the NATS transport when TESSERA_NATS_URL is set, and the
# job's outputs (checkpoints, rounds.jsonl, samples, exported model) under
# /app/runs/<job>/ — mount a volume there.
#
# Build from the repository root:
#   docker build -f deploy/coordinator.Dockerfile -t tessera/coordinator:0.1.0 .
# Run:
#   docker run -p 8080:8080 -v tessera-runs:/app/runs -e TESSERA_ADMIN_TOKEN=... tessera/coordinator:0.1.0
# Any coordinator option goes after the image name (--set training.batchSize=64, --config FILE, ...);
# change the port with PORT=..., not --port, so that the health check follows it.

# Node 22 LTS (Node 20 reached its end of life in April 2026), an exact release: a rebuild
# gets the same Node. To pin the image's bytes as well, add the digest of that
# tag (look it up where the registry is reachable):
#   docker buildx imagetools inspect node:22.23.3-bookworm-slim      # Digest: sha256:…
#   docker build --build-arg NODE_DIGEST=@sha256:… -f deploy/coordinator.Dockerfile .
ARG NODE_VERSION=22.23.3
ARG NODE_DIGEST=
ARG NODE_IMAGE=node:${NODE_VERSION}-bookworm-slim${NODE_DIGEST}

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies exactly as locked. tsx is one of them: the image runs
# the TypeScript sources as they are, as `npm run coordinator` does, so there
# is no build step whose output could drift from the sources.
# --ignore-scripts: nothing here needs an install script. esbuild's JS API finds
# its binary in the @esbuild/<platform> package by itself, msgpackr loads its
# prebuilt @msgpackr-extract/<platform> package (or its pure-JS fallback), and
# the optional `webgpu` package's postinstall is not wanted: the coordinator
# always uses the wasm backend, so that package (132 MB of Dawn builds for every
# platform) is removed outright.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && rm -rf node_modules/webgpu \
 && npm cache clean --force

FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    PORT=8080
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY shared ./shared
# Node-only pieces the coordinator shares with the worker (backend selection,
# NATS settings, dataset loaders); worker/ for --local-workers; browser-worker/
# is bundled with esbuild on the first request for /join.
COPY runtime ./runtime
COPY worker ./worker
COPY browser-worker ./browser-worker
COPY dashboard ./dashboard
COPY coordinator ./coordinator
COPY aggregator ./aggregator
# The default output.dir is `runs`, relative to the working directory. UID 1000
# is the image's `node` user; Kubernetes gives the volume to it with fsGroup 1000.
RUN mkdir -p /app/runs && chown 1000:1000 /app/runs
VOLUME ["/app/runs"]
USER 1000:1000
EXPOSE 8080
# Node has fetch; the slim image has neither curl nor wget.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + process.env.PORT + '/health').then((response) => process.exit(response.ok ? 0 : 1), () => process.exit(1))"]
# node itself is PID 1, not npm: SIGTERM reaches the coordinator, which writes
# its final checkpoint and closes (coordinator/main.ts).
ENTRYPOINT ["node", "--import", "tsx", "coordinator/main.ts"]
