// The HTTP filter: the root context owns the configs and the controller long-poll; each stream gets
// only the rollout it matched, its variant and its start time.
import {
  Buffer, getBuffer, getHeader, getProperty, httpCall, HeaderMap, incrementMetric, log, LogLevel,
  nowNanos, recordMetric, removeHeader, replaceHeader, setTickPeriodMs,
} from "./sdk/host";
import { HeadersStatus, RootContextBase, StreamContextBase } from "./sdk/dispatch";
import {
  parsePluginConfig, parseRolloutTable, PluginConfig, RolloutConfig, RolloutTable, SEGMENT_HEADER, SEGMENT_SIZE,
} from "./config";
import { isCanary, matchRollout, RandomBuckets, stickyBucket } from "./routing";
import { parseContentLength, segmentValueIndex } from "./segments";
import {
  CLASS_LOCAL, FilterMetrics, RolloutMetrics, statusClass, VARIANT_CANARY, VARIANT_NAMES, VARIANT_STABLE, VariantMetrics,
} from "./stats";

const TICK_MS: u32 = 100;
const BACKOFF_MIN_MS: u64 = 250;
const BACKOFF_MAX_MS: u64 = 5000;
const MS: u64 = 1_000_000;

/** A rollout as the data path uses it: its config plus its metric ids, defined once. */
export class ActiveRollout {
  constructor(public config: RolloutConfig, public metrics: RolloutMetrics) {}
}

/** The rollouts in force, with their configs in a parallel array for matching without allocation per request. */
class ActiveSet {
  rollouts: Array<ActiveRollout> = [];
  configs: Array<RolloutConfig> = [];

  find(path: string): ActiveRollout | null {
    const match = matchRollout(this.configs, path);
    if (match === null) return null;
    for (let i = 0; i < this.rollouts.length; i++) if (this.rollouts[i].config === match) return this.rollouts[i];
    return null;
  }
}

export class ModelrollRoot extends RootContextBase {
  plugin: PluginConfig = new PluginConfig();
  // No config yet means no rollout matches, so every request goes to stable.
  active: ActiveSet = new ActiveSet();
  table: RolloutTable | null = null;
  metricsByRollout: Map<string, RolloutMetrics> = new Map();
  filterMetrics: FilterMetrics | null = null;
  random: RandomBuckets = new RandomBuckets(0);

  pollToken: u32 = 0;
  nextPollAtNs: u64 = 0;
  backoffMs: u64 = BACKOFF_MIN_MS;

  onConfigure(size: u32): bool {
    let text = "";
    if (size > 0) {
      const bytes = getBuffer(Buffer.PluginConfiguration, 0, size);
      if (bytes === null) {
        log(LogLevel.Error, "modelroll: could not read the plugin configuration; refusing it");
        return false;
      }
      text = String.UTF8.decode(bytes);
    }
    const parsed = parsePluginConfig(text);
    if (parsed.value === null) {
      log(LogLevel.Error, "modelroll: plugin configuration refused: " + parsed.error);
      return false;
    }
    this.plugin = parsed.value!;
    this.filterMetrics = new FilterMetrics();
    this.random = new RandomBuckets(nowNanos() ^ (<u64>this.id << 32));
    const staticTable = this.plugin.staticRollouts;
    if (staticTable !== null) this.apply(staticTable);
    if (this.plugin.controller !== null) {
      // Fail-open: without a tick the filter still routes with the static/last config, it just never updates.
      if (!setTickPeriodMs(TICK_MS)) log(LogLevel.Error, "modelroll: could not set the tick period; config will not update");
      this.startPoll();
    }
    return true;
  }

  apply(table: RolloutTable): void {
    const next = new ActiveSet();
    for (let i = 0; i < table.rollouts.length; i++) {
      const r = table.rollouts[i];
      // Metrics are defined when a rollout (or its set of segments) first appears, never on the request path.
      const key = metricsKey(r);
      if (!this.metricsByRollout.has(key)) this.metricsByRollout.set(key, new RolloutMetrics(r.name, r.segments));
      next.rollouts.push(new ActiveRollout(r, this.metricsByRollout.get(key)));
      next.configs.push(r);
    }
    this.active = next;
    this.table = table;
  }

  onTick(): void {
    if (this.plugin.controller === null || this.pollToken != 0) return;
    if (nowNanos() >= this.nextPollAtNs) this.startPoll();
  }

  startPoll(): void {
    const ctl = this.plugin.controller!;
    let path = ctl.path + "?wait=" + ctl.pollWaitSeconds.toString();
    const table = this.table;
    if (table !== null && table.epoch != "static") {
      path += "&version=" + table.version.toString() + "&epoch=" + table.epoch;
    }
    const token = httpCall(ctl.cluster,
      [":method", ":path", ":authority", "accept"],
      ["GET", path, ctl.authority, "application/json"],
      null, (ctl.pollWaitSeconds + 5) * 1000);
    if (token == 0) {
      this.pollFailed("Envoy refused the call to cluster " + ctl.cluster);
      return;
    }
    this.pollToken = token;
  }

  pollFailed(reason: string): void {
    this.pollToken = 0;
    const m = this.filterMetrics;
    if (m !== null) incrementMetric(m.configFetchFailures);
    log(LogLevel.Debug, "modelroll: config fetch failed (" + reason + "); keeping the last config, retry in " + this.backoffMs.toString() + " ms");
    this.nextPollAtNs = nowNanos() + this.backoffMs * MS;
    this.backoffMs = this.backoffMs * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : this.backoffMs * 2;
  }

  onHttpCallResponse(token: u32, headerCount: u32, bodySize: u32, trailerCount: u32): void {
    if (token != this.pollToken) return;
    this.pollToken = 0;
    // Envoy reports a failed call (reset, timeout, no upstream) as a response without headers.
    if (headerCount == 0) { this.pollFailed("no response"); return; }
    const status = getHeader(HeaderMap.HttpCallResponseHeaders, ":status");
    if (status === null) { this.pollFailed("no status"); return; }
    if (status == "304") {
      this.backoffMs = BACKOFF_MIN_MS;
      this.startPoll();
      return;
    }
    if (status != "200") { this.pollFailed("status " + status); return; }
    const body = getBuffer(Buffer.HttpCallResponseBody, 0, bodySize);
    if (body === null) { this.pollFailed("unreadable body"); return; }
    const parsed = parseRolloutTable(String.UTF8.decode(body));
    if (parsed.value === null) {
      const m = this.filterMetrics;
      if (m !== null) incrementMetric(m.configRejected);
      log(LogLevel.Error, "modelroll: controller config refused, keeping the last good one: " + parsed.error);
      this.pollFailed("invalid config");
      return;
    }
    const table = parsed.value!;
    const current = this.table;
    if (current === null || current.epoch != table.epoch || current.version != table.version) {
      this.apply(table);
      const m = this.filterMetrics;
      if (m !== null) incrementMetric(m.configUpdates);
      log(LogLevel.Info, "modelroll: config version " + table.version.toString() + " applied (" + table.rollouts.length.toString() + " rollouts)");
    }
    this.backoffMs = BACKOFF_MIN_MS;
    this.startPoll();
  }

  createStream(id: u32): StreamContextBase {
    return new ModelrollStream(id, this);
  }
}

export class ModelrollStream extends StreamContextBase {
  rollout: ActiveRollout | null = null;
  variant: i32 = VARIANT_STABLE;
  startNs: u64 = 0;
  /** Where this request is counted: the variant overall, then its value in each segment dimension. */
  slices: Array<VariantMetrics> = [];

  onRequestHeaders(headerCount: u32, endOfStream: bool): HeadersStatus {
    const root = changetype<ModelrollRoot>(this.root);
    const variantHeader = root.plugin.variantHeader;
    const path = getHeader(HeaderMap.RequestHeaders, ":path");
    let found: ActiveRollout | null = null;
    if (path !== null) found = root.active.find(path);
    if (found === null) {
      // Not ours: a client-sent variant header must not pick the canary route.
      removeHeader(HeaderMap.RequestHeaders, variantHeader);
      return HeadersStatus.Continue;
    }
    const rollout = changetype<ActiveRollout>(found);
    const key = getHeader(HeaderMap.RequestHeaders, rollout.config.stickyHeader);
    const bucket = key === null || key.length == 0 ? root.random.next() : stickyBucket(rollout.config.name, key);
    this.variant = isCanary(bucket, rollout.config.canaryBasisPoints) ? VARIANT_CANARY : VARIANT_STABLE;
    // Changing a request header makes Envoy re-pick the route (ABI 0.2.1), so this decides the cluster.
    if (!replaceHeader(HeaderMap.RequestHeaders, variantHeader, VARIANT_NAMES[this.variant])) {
      // Fail-safe: if we cannot set our header, make sure no client value remains and count it as stable.
      removeHeader(HeaderMap.RequestHeaders, variantHeader);
      this.variant = VARIANT_STABLE;
    }
    this.rollout = rollout;
    this.startNs = nowNanos();
    this.slices = slicesFor(rollout, this.variant, path!);
    for (let i = 0; i < this.slices.length; i++) incrementMetric(this.slices[i].requests);
    return HeadersStatus.Continue;
  }

  onResponseHeaders(headerCount: u32, endOfStream: bool): HeadersStatus {
    const rollout = this.rollout;
    if (rollout === null) return HeadersStatus.Continue;
    this.rollout = null; // count each stream's response once
    const root = changetype<ModelrollRoot>(this.root);
    const now = nowNanos();
    const latencyUs: u64 = this.startNs > 0 && now > this.startNs ? (now - this.startNs) / 1000 : 0;
    const cls = responseClass();
    for (let i = 0; i < this.slices.length; i++) {
      const m = this.slices[i];
      if (latencyUs > 0) recordMetric(m.latencyUs, latencyUs);
      incrementMetric(m.responses[cls]);
    }
    replaceHeader(HeaderMap.ResponseHeaders, root.plugin.responseVariantHeader, VARIANT_NAMES[this.variant]);
    return HeadersStatus.Continue;
  }
}

function metricsKey(r: RolloutConfig): string {
  let key = r.name;
  for (let d = 0; d < r.segments.length; d++) key += "|" + r.segments[d].name + ":" + r.segments[d].values.join(",");
  return key;
}

function slicesFor(rollout: ActiveRollout, variant: i32, path: string): Array<VariantMetrics> {
  const segments = rollout.config.segments;
  const slices = new Array<VariantMetrics>(1 + segments.length);
  slices[0] = rollout.metrics.variants[variant];
  let contentLength: i64 = -2; // read once, and only if a size dimension asks
  for (let d = 0; d < segments.length; d++) {
    const seg = segments[d];
    let header: string | null = null;
    if (seg.kind == SEGMENT_HEADER) header = getHeader(HeaderMap.RequestHeaders, seg.header);
    else if (seg.kind == SEGMENT_SIZE && contentLength == -2) contentLength = parseContentLength(getHeader(HeaderMap.RequestHeaders, "content-length"));
    const k = segmentValueIndex(seg, header, path, contentLength);
    slices[1 + d] = rollout.metrics.segments[d][k][variant];
  }
  return slices;
}

/**
 * Local replies (timeouts, no upstream, resets) are told apart from upstream answers by Envoy's code
 * details. Envoy's local replies are all errors, so the property (a comparatively costly host call) is
 * read only for statuses >= 400.
 */
function responseClass(): i32 {
  const status = getHeader(HeaderMap.ResponseHeaders, ":status");
  if (status === null) return CLASS_LOCAL;
  const code = I32.parseInt(status);
  if (code < 400) return statusClass(code);
  const details = getProperty(["response", "code_details"]);
  if (details !== null && String.UTF8.decode(details) != "via_upstream") return CLASS_LOCAL;
  return statusClass(code);
}
