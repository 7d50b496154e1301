// The two configs the filter receives, parsed into typed objects (config-model.ts):
//  - the plugin configuration from Envoy's bootstrap / WasmPlugin: written by hand, so unknown members are typos
//    and refused at every level, its static `rollouts` included;
//  - the rollout table from the controller's long-poll: unknown members are ignored, so an older filter keeps
//    working with a newer controller.
// Errors name the field: "rollouts[2].canaryBasisPoints: must be an integer 0..10000".
import { JsonKind, parseJson } from "./json";
import { isLowerToken, isPrintableToken, ObjectReader, Problems } from "./config-fields";
import { ControllerConfig, ParseResult, PluginConfig, RolloutTable } from "./config-model";
import { parseRolloutList } from "./config-rollout";

/** The controller's answer: `{ epoch, version, rollouts: [...] }`. */
export function parseRolloutTable(text: string): ParseResult<RolloutTable> {
  const parsed = parseJson(text, 16);
  const root = parsed.value;
  if (root === null) return new ParseResult<RolloutTable>(null, "not JSON: " + parsed.error + " at byte " + parsed.offset.toString());
  if (root.kind != JsonKind.Object) return new ParseResult<RolloutTable>(null, "must be a JSON object");
  const problems = new Problems(false);
  const reader = new ObjectReader(root, "", problems);
  const table = new RolloutTable();
  const epoch = reader.string("epoch", false);
  if (epoch !== null) table.epoch = epoch;
  const version = reader.integer("version", 0, 9007199254740991);
  if (isNaN(version)) {
    if (!reader.has("version")) problems.add("version: is required");
  } else {
    table.version = <i64>version;
  }
  table.rollouts = parseRolloutList(reader.get("rollouts"), "rollouts", problems);
  if (problems.count > 0) return new ParseResult<RolloutTable>(null, problems.join());
  return new ParseResult<RolloutTable>(table, "");
}

/** The plugin configuration from Envoy; an empty string means all defaults and no controller. */
export function parsePluginConfig(text: string): ParseResult<PluginConfig> {
  const config = new PluginConfig();
  if (text.trim().length == 0) return new ParseResult<PluginConfig>(config, "");
  const parsed = parseJson(text, 16);
  const root = parsed.value;
  if (root === null) return new ParseResult<PluginConfig>(null, "not JSON: " + parsed.error + " at byte " + parsed.offset.toString());
  if (root.kind != JsonKind.Object) return new ParseResult<PluginConfig>(null, "must be a JSON object");
  const problems = new Problems(true);
  const reader = new ObjectReader(root, "", problems);
  config.headersStopIteration = reader.boolean("headersStopIteration", config.headersStopIteration);
  const variant = reader.string("variantHeader", false);
  if (variant !== null) {
    if (isLowerToken(variant)) config.variantHeader = variant;
    else reader.problem("variantHeader", "must be a lowercase header name");
  }
  const responseVariant = reader.string("responseVariantHeader", false);
  if (responseVariant !== null) {
    if (isLowerToken(responseVariant)) config.responseVariantHeader = responseVariant;
    else reader.problem("responseVariantHeader", "must be a lowercase header name");
  }
  const ctl = reader.get("controller");
  if (ctl !== null) {
    if (ctl.kind != JsonKind.Object) problems.add("controller: must be an object");
    else config.controller = parseController(new ObjectReader(ctl, "controller.", problems));
  }
  if (reader.has("rollouts")) {
    const table = new RolloutTable();
    table.epoch = "static";
    table.rollouts = parseRolloutList(reader.get("rollouts"), "rollouts", problems);
    // The controller's config version, when it writes the rollouts here (--config-delivery istiod): the filter
    // reports it like a polled one (stats.ts VersionReport), so the controller sees which proxies run which weights.
    const version = reader.integer("configVersion", 0, 9007199254740991);
    if (!isNaN(version)) table.version = <i64>version;
    config.staticRollouts = table;
  } else if (reader.has("configVersion")) {
    reader.problem("configVersion", "only with rollouts");
  }
  reader.finish();
  if (problems.count > 0) return new ParseResult<PluginConfig>(null, problems.join());
  return new ParseResult<PluginConfig>(config, "");
}

function parseController(reader: ObjectReader): ControllerConfig {
  const c = new ControllerConfig();
  const cluster = reader.string("cluster", true);
  if (cluster !== null) {
    if (cluster.length > 0) c.cluster = cluster;
    else reader.problem("cluster", "must not be empty");
  }
  const authority = reader.string("authority", true);
  if (authority !== null) {
    if (authority.length > 0) c.authority = authority;
    else reader.problem("authority", "must not be empty");
  }
  const path = reader.string("path", false);
  if (path !== null) {
    if (path.length > 0 && path.charCodeAt(0) == 0x2f && !path.includes("?")) c.path = path;
    else reader.problem("path", "must start with '/' and have no query");
  }
  const wait = reader.integer("pollWaitSeconds", 1, 60);
  if (!isNaN(wait)) c.pollWaitSeconds = <u32>wait;
  const token = reader.string("token", false);
  if (token !== null) {
    // A bearer token goes into a header value as is: printable ASCII, no spaces, bounded.
    if (isPrintableToken(token, 256)) c.token = token;
    else reader.problem("token", "must be 1-256 printable ASCII characters without spaces");
  }
  reader.finish();
  return c;
}
