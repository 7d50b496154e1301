// The filter's configuration as typed objects: what the parsers (config.ts, config-rollout.ts) produce and the
// data path reads. Defaults here are the ones a config that leaves a field out gets.
import { SchemaNode } from "./schema";
import { ModelsConfig } from "./identity";
import { ModelRouteConfig } from "./model-route";
import { ToolConfig } from "./tool-calls";

export const SEGMENT_HEADER: i32 = 0;
export const SEGMENT_PATH: i32 = 1;
export const SEGMENT_SIZE: i32 = 2;

/**
 * One segment dimension. Its value for a request is one of `values`, or "other" (always the last index,
 * values.length), so a client cannot create new stat names.
 *  - header: the lowercased header value if listed;
 *  - path:   the value of the longest matching prefix (prefixes[i] -> values[i]);
 *  - size:   content-length <= bounds[i] -> values[i]; above the last bound -> values[bounds.length].
 */
export class SegmentConfig {
  name: string = "";
  kind: i32 = SEGMENT_HEADER;
  header: string = "";
  values: Array<string> = [];
  prefixes: Array<string> = [];
  bounds: Array<i64> = [];
}

/** Mirroring of sampled requests to a shadow model, and how its answer is compared with the primary's. */
export class ShadowConfig {
  /** Sampled share in basis points, sticky by the rollout's key (a sampled user is always mirrored). */
  basisPoints: u32 = 0;
  /** Envoy cluster the mirrored requests go to. */
  cluster: string = "shadow";
  timeoutMs: u32 = 1000;
  /** Request bodies larger than this are not mirrored (counted); response bodies larger are not compared. */
  maxBodyBytes: u32 = 65536;
  /** Mirrored calls in flight per Envoy worker; beyond it requests are not mirrored (counted). */
  maxInFlight: u32 = 64;
  /**
   * Share of the mirrored requests answered by stable that are also sent to stable a second time, in basis points
   * (noise.ts): how often stable disagrees with itself, against which the shadow's disagreement is judged.
   */
  noiseBasisPoints: u32 = 0;
  /** Where the second stable call goes. */
  noiseCluster: string = "stable";
}

/**
 * What the filter reads from the model's JSON answers. Paths are dotted, e.g. "usage.prompt_tokens".
 * `analyze` turns on per-answer analysis (label distribution, confidence, LLM fields, schema); without it
 * answers are read only for shadow comparison.
 */
export class OutputConfig {
  analyze: bool = false;
  maxBodyBytes: u32 = 65536;
  predictionField: Array<string> = ["prediction"];
  confidenceField: Array<string> = ["confidence"];
  /** Bounded label set for the prediction distribution; anything else counts as "other". */
  labels: Array<string> = [];
  promptTokensField: Array<string> = ["usage", "prompt_tokens"];
  completionTokensField: Array<string> = ["usage", "completion_tokens"];
  citationField: Array<string> | null = null;
  abstainedField: Array<string> | null = null;
  fallbackField: Array<string> | null = null;
  /** The compiled output schema (sent as JSON text, parsed here once per config), or null. */
  schema: SchemaNode | null = null;
  /** Canary output guard: a canary answer failing the schema is replaced by the stable model's answer. */
  guard: bool = false;
  /** Where the guard fetches the stable answer from. */
  guardCluster: string = "stable";
  guardTimeoutMs: u32 = 2000;
  /** Declared tools: each tool call's arguments are checked against its tool's schema (tool-calls.ts). */
  tools: Array<ToolConfig> = [];
}

export class RolloutConfig {
  name: string = "";
  pathPrefix: string = "";
  stickyHeader: string = "";
  canaryBasisPoints: u32 = 0;
  segments: Array<SegmentConfig> = [];
  shadow: ShadowConfig | null = null;
  output: OutputConfig = new OutputConfig();
  /** The declared models and where answers state their version (identity.ts); null: not checked. */
  models: ModelsConfig | null = null;
  /** Matched by the request body's model, and the canary's model rewrite (model-route.ts); null: by path only. */
  model: ModelRouteConfig | null = null;
}

export class RolloutTable {
  epoch: string = "";
  version: i64 = 0;
  rollouts: Array<RolloutConfig> = [];
}

export class ControllerConfig {
  cluster: string = "";
  authority: string = "";
  path: string = "/v1/filter-config";
  pollWaitSeconds: u32 = 20;
  /** Bearer token for the config long-poll (the controller's read-only filter token); empty: none sent. */
  token: string = "";
}

export class PluginConfig {
  variantHeader: string = "x-rollout-variant";
  responseVariantHeader: string = "x-rollout-variant";
  controller: ControllerConfig | null = null;
  /**
   * The host honours StopIteration from header callbacks (Envoy's allow_on_headers_stop_iteration). Without
   * it Envoy would stop delivering the body after a headers stop, so the output guard stays off.
   */
  headersStopIteration: bool = false;
  /** Rollouts given statically (e.g. through Istio's pluginConfig); replaced by the controller's once it answers. */
  staticRollouts: RolloutTable | null = null;
}

export class ParseResult<T> {
  constructor(
    public value: T | null,
    public error: string,
  ) {}
}
