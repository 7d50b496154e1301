# The controller's image (deploy/istio/controller.yaml, controller-ha.yaml): the controller compiled to
# JavaScript and the dashboard it serves at /, on Node 20. Build from the repository root:
#   docker build -f deploy/istio/controller.Dockerfile -t REGISTRY/modelroll/controller:0.1.0 .
# This machine has no container runtime: test/mesh/controller-image.test.ts runs these steps into a directory
# (each COPY and RUN as written, the package download replaced by the installed node_modules of the same lock
# file) and starts the controller from the final stage's files.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the install step's Envoy/Prometheus/mesh tooling is for development; better-sqlite3's native
# addon is rebuilt explicitly.
RUN npm ci --ignore-scripts && npm rebuild better-sqlite3
# TypeScript compiles the controller to controller/dist; esbuild bundles the dashboard (Preact + uPlot) into
# build/dashboard, which the controller serves at / (without it / answers 503). Then the dev dependencies
# (TypeScript among them) are pruned.
COPY controller/src ./controller/src
COPY controller/tsconfig.json ./controller/
COPY tsconfig.json tsconfig.build.json ./
COPY dashboard ./dashboard
COPY scripts/build-controller.mjs scripts/build-dashboard.mjs ./scripts/
RUN node scripts/build-controller.mjs && node scripts/build-dashboard.mjs && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
# Only what runs: the dependencies, the compiled controller, the built dashboard (no sources, no build scripts).
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/controller/dist ./controller/dist
COPY --from=build /app/build/dashboard ./build/dashboard
# Matches the Deployments' runAsUser/runAsGroup; the state lives on the mounted volume (or in the API server),
# /tmp is an emptyDir.
USER 10001:10001
ENTRYPOINT ["node", "--enable-source-maps", "controller/dist/cli/controller.js"]
