# syntax=docker/dockerfile:1
# A Tessera worker on an NVIDIA GPU: tfjs-node-gpu 4.22 (libtensorflow 2.9.1,
# built for CUDA 11 and cuDNN 8) on the CUDA 11.8 + cuDNN 8 runtime, Node 22.
# The host needs the NVIDIA driver and the NVIDIA container toolkit:
#   docker run --gpus 1 -e TESSERA_URL=ws://coordinator:8080/ws tessera/worker-gpu:0.1.0
# On Kubernetes, the NVIDIA device plugin (k8s/overlays/gpu asks for nvidia.com/gpu: 1).
#
# Build from the repository root (the build downloads libtensorflow, ~400 MB,
# in tfjs-node-gpu's install script):
#   docker build -f deploy/worker-gpu.Dockerfile -t tessera/worker-gpu:0.1.0 .

# An exact tag; pin its bytes with --build-arg CUDA_DIGEST=@sha256:… as for Node below.
ARG CUDA_DIGEST=
ARG CUDA_IMAGE=nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04${CUDA_DIGEST}

# Node 22 LTS (Node 20 reached its end of life in April 2026), an exact release: a rebuild
# gets the same Node. To pin the image's bytes as well, add the digest of that
# tag (look it up where the registry is reachable):
#   docker buildx imagetools inspect node:22.23.3-bookworm-slim      # Digest: sha256:…
#   docker build --build-arg NODE_DIGEST=@sha256:… -f deploy/worker-gpu.Dockerfile .
ARG NODE_VERSION=22.23.3
ARG NODE_DIGEST=
ARG NODE_IMAGE=node:${NODE_VERSION}-bookworm-slim${NODE_DIGEST}

# Node from the official image: its binary needs glibc 2.28, Ubuntu 22.04 has 2.35.
FROM ${NODE_IMAGE} AS node

FROM ${CUDA_IMAGE} AS deps
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm
# ca-certificates for the libtensorflow download; python3, make and g++ in case
# node-pre-gyp has to build the binding from source instead of fetching it.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# The locked dependencies first (without install scripts, as in the CPU image),
# then tfjs-node-gpu with its install script, which fetches libtensorflow and
# the prebuilt binding. It is not in package.json on purpose: that download
# would hit every `npm install` (README: the tfjs-node packages are optional).
# The `webgpu` package goes last, since npm install would put it back.
# The `ls` fails the build when the binding did not arrive.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm install --no-save --omit=dev --no-audit --no-fund @tensorflow/tfjs-node-gpu@4.22.0 \
 && ls node_modules/@tensorflow/tfjs-node-gpu/lib/napi-v*/tfjs_binding.node \
 && rm -rf node_modules/webgpu \
 && npm cache clean --force

FROM ${CUDA_IMAGE}
COPY --from=node /usr/local/bin/node /usr/local/bin/node
RUN groupadd --gid 1000 tessera && useradd --uid 1000 --gid 1000 --no-create-home --shell /usr/sbin/nologin tessera
# TF_CPP_MIN_LOG_LEVEL=1 keeps libtensorflow's info lines out of the log;
# warnings stay. CUDA_CACHE_PATH: the user has no home directory, and CUDA's
# JIT cache (PTX compiled for GPUs newer than libtensorflow's build) must be
# writable; Kubernetes mounts an emptyDir on /tmp.
ENV NODE_ENV=production \
    TF_CPP_MIN_LOG_LEVEL=1 \
    CUDA_CACHE_PATH=/tmp/cuda-cache
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY shared ./shared
COPY runtime ./runtime
COPY worker ./worker
COPY deploy/worker-health.mjs ./deploy/worker-health.mjs
USER 1000:1000
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["node", "deploy/worker-health.mjs"]
# --backend tensorflow, not the automatic choice: a worker whose tfjs-node-gpu
# binding does not load must fail loudly, not fall back to wasm and train far
# slower. (libtensorflow itself says in the log when it sees no GPU and runs on
# the CPU.)
ENTRYPOINT ["node", "--import", "tsx", "worker/main.ts", "--backend", "tensorflow"]
