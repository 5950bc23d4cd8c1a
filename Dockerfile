# syntax=docker/dockerfile:1
# Autodidact CPU image: every service (`node bin/autodidact.mjs <service> ...`), TypeScript run by tsx
# as in development (no build step). Build: docker build -t autodidact:dev .
# GPU variant (CUDA execution provider): Dockerfile.gpu.

ARG NODE_IMAGE=node:22-bookworm-slim

# --- dependencies: npm ci without dependency install scripts (none is needed; onnxruntime-node's would
#     download the CUDA provider; see .npmrc and package.json "allowScripts") ---
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# --- runtime: node + production node_modules + sources; no npm cache, no build tools, not root ---
FROM ${NODE_IMAGE} AS runtime
WORKDIR /app
ENV NODE_ENV=production \
    AUTODIDACT_GRPC_PORT=50051 \
    AUTODIDACT_METRICS_PORT=9464
COPY --from=deps --chown=root:root /app/node_modules ./node_modules
COPY --chown=root:root package.json tsconfig.json ./
COPY --chown=root:root bin ./bin
COPY --chown=root:root proto ./proto
COPY --chown=root:root src ./src
COPY --chown=root:root services ./services
COPY --chown=root:root apps ./apps
# The shipped base models: the conductor's init container seeds its models volume from them.
COPY --chown=root:root models ./models
# The image's `node` user (uid 1000), matching runAsUser in deploy/k8s.
USER 1000:1000
EXPOSE 50051 9464
ENTRYPOINT ["node", "bin/autodidact.mjs"]
CMD ["help"]
