// Pinned versions of what the Istio-mesh tests use, shared by the install step (scripts/install-mesh.mjs) and
// the tests (test/mesh/). All of it comes from the Go module proxy.

/** Istio's API module: its kubernetes/customresourcedefinitions.gen.yaml holds the published CRDs. */
export const ISTIO_API = { module: "istio.io/api", version: "v1.32.0" };
/** Kubernetes' own OpenAPI v3 documents (api/openapi-spec/v3) for the core kinds. */
export const KUBERNETES = { module: "k8s.io/kubernetes", version: "v1.34.2" };
/** The PodMonitor / ServiceMonitor CRDs (example/prometheus-operator-crd). */
export const PROMETHEUS_OPERATOR = { module: "github.com/prometheus-operator/prometheus-operator", version: "v0.85.0" };
/** The OCI client that builds and copies the filter image. */
export const ORAS = { pkg: "oras.land/oras/cmd/oras", version: "v1.3.6" };

/** Files copied out of the modules into .cache/mesh/ (relative to the module root). */
export const SCHEMA_FILES = {
  "istio-crds.yaml": [ISTIO_API, "kubernetes/customresourcedefinitions.gen.yaml"],
  "k8s-api-v1.json": [KUBERNETES, "api/openapi-spec/v3/api__v1_openapi.json"],
  "k8s-apps-v1.json": [KUBERNETES, "api/openapi-spec/v3/apis__apps__v1_openapi.json"],
  "k8s-rbac-v1.json": [KUBERNETES, "api/openapi-spec/v3/apis__rbac.authorization.k8s.io__v1_openapi.json"],
  "k8s-policy-v1.json": [KUBERNETES, "api/openapi-spec/v3/apis__policy__v1_openapi.json"],
  "k8s-apiextensions-v1.json": [KUBERNETES, "api/openapi-spec/v3/apis__apiextensions.k8s.io__v1_openapi.json"],
  "podmonitors.yaml": [PROMETHEUS_OPERATOR, "example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml"],
};
