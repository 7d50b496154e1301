# The controller's image (deploy/istio/controller.yaml). Not built by the tests: this machine has no container
# runtime and no base images. Build from the repository root:
#   docker build -f deploy/istio/controller.Dockerfile -t REGISTRY/modelroll/controller:0.1.0 .
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the install step's Envoy/Prometheus/mesh tooling is for development; better-sqlite3's native
# addon is rebuilt explicitly.
RUN npm ci --omit=dev --ignore-scripts && npm rebuild better-sqlite3
COPY controller ./controller
COPY tsconfig.json ./

FROM node:20-bookworm-slim
WORKDIR /app
COPY --from=build /app /app
# Matches the Deployment's runAsUser/runAsGroup; the state lives on the mounted volume, /tmp is an emptyDir.
USER 10001:10001
ENTRYPOINT ["node", "--import", "tsx", "controller/src/cli/controller.ts"]
