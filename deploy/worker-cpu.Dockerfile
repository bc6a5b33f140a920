# syntax=docker/dockerfile:1
# A Tessera worker on CPU: tfjs's wasm backend with the project's conv kernels, its convolutions in oneDNN.
# It serves no port; it connects out to the coordinator (TESSERA_URL=ws://HOST:8080/ws)
# or to NATS (TESSERA_NATS_URL=nats://HOST:4222 with TESSERA_NATS_USER/_PASS).
#
# Build from the repository root:
#   docker build -f deploy/worker-cpu.Dockerfile -t tessera/worker-cpu:0.1.0 .
# Run:
#   docker run -e TESSERA_URL=ws://coordinator:8080/ws -e TESSERA_WORKER_TOKEN=... tessera/worker-cpu:0.1.0
# Options after the image name are the worker's own (--job ID, --name NAME, ...).

# Node 22 LTS (Node 20 reached its end of life in April 2026), an exact release: a rebuild
# gets the same Node. To pin the image's bytes as well, add the digest of that
# tag (look it up where the registry is reachable):
#   docker buildx imagetools inspect node:22.23.3-bookworm-slim      # Digest: sha256:…
#   docker build --build-arg NODE_DIGEST=@sha256:… -f deploy/worker-cpu.Dockerfile .
ARG NODE_VERSION=22.23.3
ARG NODE_DIGEST=
ARG NODE_IMAGE=node:${NODE_VERSION}-bookworm-slim${NODE_DIGEST}

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# See coordinator.Dockerfile for why --ignore-scripts is safe. This image uses
# the wasm backend, so the optional `webgpu` package (Dawn builds) goes.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && rm -rf node_modules/webgpu \
 && npm cache clean --force

# The oneDNN convolutions (native/): built against Debian's libdnnl-dev here, run on its libdnnl2 below.
FROM ${NODE_IMAGE} AS native
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libdnnl-dev g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY native ./native
RUN bash native/build.sh && test -f native/build/tessera_dnnl.node

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libdnnl2 libgomp1 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=native /app/native/build ./native/build
COPY package.json tsconfig.json ./
COPY shared ./shared
COPY runtime ./runtime
COPY worker ./worker
COPY deploy/worker-health.mjs ./deploy/worker-health.mjs
USER 1000:1000
# The worker has no HTTP port. A healthy worker holds an established connection
# to its coordinator or NATS server; one whose event loop hangs loses it within
# about a minute (the coordinator's pings, NATS's ping_interval), and the
# check fails. See deploy/worker-health.mjs.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["node", "deploy/worker-health.mjs"]
# The backend is part of what this image is; a later --backend overrides it.
# On SIGTERM the worker finishes the update it is computing, sends it, says
# leave and exits 0: give it a stop timeout longer than one round.
ENTRYPOINT ["node", "--import", "tsx", "worker/main.ts", "--backend", "wasm"]
