// The controller long-poll, owned by the root context: GET <path>?wait=N[&version=V&epoch=E], answered at once
// when the controller has a newer table, else after up to N seconds with 304. A failed or refused poll keeps the
// last table (fail static) and is retried with backoff, 250 ms doubling to 5 s, from the root's tick.
import { Buffer, getBuffer, getHeader, HeaderMap, httpCall, incrementMetric, log, LogLevel, nowNanos } from "./sdk/host";
import { ControllerConfig, RolloutTable } from "./config-model";
import { parseRolloutTable } from "./config";
import { FilterMetrics } from "./stats";

const BACKOFF_MIN_MS: u64 = 250;
const BACKOFF_MAX_MS: u64 = 5000;
const MS: u64 = 1_000_000;

export class ConfigPoll {
  /** The call in flight; 0 while waiting to retry. */
  private token: u32 = 0;
  private retryAtNs: u64 = 0;
  private backoffMs: u64 = BACKOFF_MIN_MS;

  constructor(
    private ctl: ControllerConfig,
    private metrics: FilterMetrics,
  ) {}

  owns(token: u32): bool {
    return token != 0 && token == this.token;
  }

  /** From the root's tick: a failed poll is retried once its backoff has passed. */
  tick(current: RolloutTable | null): void {
    if (this.token == 0 && nowNanos() >= this.retryAtNs) this.start(current);
  }

  /** Asks for anything newer than `current` (a static table counts as none). */
  start(current: RolloutTable | null): void {
    const ctl = this.ctl;
    let path = ctl.path + "?wait=" + ctl.pollWaitSeconds.toString();
    if (current !== null && current.epoch != "static") {
      path += "&version=" + current.version.toString() + "&epoch=" + current.epoch;
    }
    const names: string[] = [":method", ":path", ":authority", "accept"];
    const values: string[] = ["GET", path, ctl.authority, "application/json"];
    if (ctl.token.length > 0) {
      names.push("authorization");
      values.push("Bearer " + ctl.token);
    }
    const token = httpCall(ctl.cluster, names, values, null, (ctl.pollWaitSeconds + 5) * 1000);
    if (token == 0) {
      this.failed("Envoy refused the call to cluster " + ctl.cluster);
      return;
    }
    this.token = token;
  }

  /**
   * The controller answered the poll (`owns(token)` was true). Returns the table to apply when it is new, null
   * otherwise; before returning, the next poll is on its way (asking past the returned table) or scheduled.
   */
  answered(headerCount: u32, bodySize: u32, current: RolloutTable | null): RolloutTable | null {
    this.token = 0;
    // Envoy reports a failed call (reset, timeout, no upstream) as a response without headers.
    if (headerCount == 0) return this.failed("no response");
    const status = getHeader(HeaderMap.HttpCallResponseHeaders, ":status");
    if (status === null) return this.failed("no status");
    if (status == "304") return this.again(current, null);
    if (status == "401" || status == "403") {
      // A wrong or missing filter token never fixes itself: say so where operators look.
      log(LogLevel.Error, "modelroll: the controller refused the filter's token (status " + status + "); keeping the last config");
    }
    if (status != "200") return this.failed("status " + status);
    const body = getBuffer(Buffer.HttpCallResponseBody, 0, bodySize);
    if (body === null) return this.failed("unreadable body");
    const parsed = parseRolloutTable(String.UTF8.decode(body));
    const table = parsed.value;
    if (table === null) {
      incrementMetric(this.metrics.configRejected);
      log(LogLevel.Error, "modelroll: controller config refused, keeping the last good one: " + parsed.error);
      return this.failed("invalid config");
    }
    if (current !== null && current.epoch == table.epoch && current.version == table.version) return this.again(current, null);
    incrementMetric(this.metrics.configUpdates);
    log(LogLevel.Info, "modelroll: config version " + table.version.toString() + " applied (" + table.rollouts.length.toString() + " rollouts)");
    return this.again(table, table);
  }

  private again(asOf: RolloutTable | null, result: RolloutTable | null): RolloutTable | null {
    this.backoffMs = BACKOFF_MIN_MS;
    this.start(asOf);
    return result;
  }

  private failed(reason: string): RolloutTable | null {
    this.token = 0;
    incrementMetric(this.metrics.configFetchFailures);
    log(LogLevel.Debug, "modelroll: config fetch failed (" + reason + "); keeping the last config, retry in " + this.backoffMs.toString() + " ms");
    this.retryAtNs = nowNanos() + this.backoffMs * MS;
    this.backoffMs = this.backoffMs * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : this.backoffMs * 2;
    return null;
  }
}
