# The controller's image (deploy/istio/controller.yaml). Not built by the tests: this machine has no container
# runtime and no base images. Build from the repository root:
#   docker build -f deploy/istio/controller.Dockerfile -t REGISTRY/modelroll/controller:0.1.0 .
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the install step's Envoy/Prometheus/mesh tooling is for development; better-sqlite3's native
# addon is rebuilt explicitly. TypeScript compiles the controller to controller/dist; the dev dependencies
# (TypeScript among them) are pruned after.
RUN npm ci --ignore-scripts && npm rebuild better-sqlite3
COPY controller/src ./controller/src
COPY controller/tsconfig.json ./controller/
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build-controller.mjs ./scripts/
RUN node scripts/build-controller.mjs && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
COPY --from=build /app /app
# Matches the Deployment's runAsUser/runAsGroup; the state lives on the mounted volume, /tmp is an emptyDir.
USER 10001:10001
ENTRYPOINT ["node", "--enable-source-maps", "controller/dist/cli/controller.js"]
