// The root context: owns the parsed plugin config, the rollouts in force (static ones from the plugin config,
// then the controller's), the controller long-poll, and the calls that outlive a stream. Envoy creates one per
// plugin configuration on a VM (a new one for each Istio ECDS push) and answers every HTTP call here.
import { Buffer, getBuffer, log, LogLevel, nowNanos, setEffectiveContext, setTickPeriodMs } from "./sdk/host";
import { findStream, RootContextBase, StreamContextBase } from "./sdk/dispatch";
import { RolloutTable } from "./config-model";
import { parsePluginConfig } from "./config";
import { ActiveSet, filterMetricsOfVm } from "./active";
import { VersionReport } from "./stats";
import { ConfigPoll } from "./poll";
import { RandomBuckets } from "./routing";
import { RootState } from "./root-state";
import { ModelrollStream } from "./stream";

const TICK_MS: u32 = 100;

export class ModelrollRoot extends RootContextBase {
  state: RootState;
  /** The table in force (static or the controller's); null: none yet, everything goes to stable. */
  table: RolloutTable | null = null;
  /** Present when the plugin config names a controller. */
  poll: ConfigPoll | null = null;
  /** This context's part of the config-version gauges (stats.ts): what the controller reads back. */
  versions: VersionReport | null = null;

  constructor(id: u32) {
    super(id);
    this.state = new RootState(id);
  }

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
    const plugin = parsed.value;
    if (plugin === null) {
      log(LogLevel.Error, "modelroll: plugin configuration refused: " + parsed.error);
      return false;
    }
    const state = this.state;
    state.plugin = plugin;
    state.random = new RandomBuckets(nowNanos() ^ ((<u64>this.id) << 32));
    const metrics = filterMetricsOfVm();
    let versions = this.versions;
    if (versions === null) {
      versions = new VersionReport(metrics);
      this.versions = versions;
    }
    const staticTable = plugin.staticRollouts;
    if (staticTable !== null) this.apply(staticTable);
    const ctl = plugin.controller;
    // Counted in the version gauges: a context that polls from its first tick, one that only has its plugin
    // config's table (no controller, e.g. istiod's ECDS) from its first request. Envoy also configures roots that
    // never tick nor serve (on the main thread; after an ECDS push the previous config's main-thread root stays
    // alive, one per push): counting those would show a laggard that never catches up.
    if (ctl !== null) {
      const poll = new ConfigPoll(ctl, metrics);
      this.poll = poll;
      // Fail-open: without a tick the filter still routes with the static/last config, it just never updates.
      if (!setTickPeriodMs(TICK_MS)) log(LogLevel.Error, "modelroll: could not set the tick period; config will not update");
      poll.start(this.table);
    }
    return true;
  }

  apply(table: RolloutTable): void {
    this.state.active = ActiveSet.of(table, this.state.active);
    this.table = table;
    const versions = this.versions;
    if (versions !== null) versions.runs(table.version);
  }

  onDelete(): void {
    const versions = this.versions;
    if (versions !== null) versions.leave();
  }

  onTick(): void {
    const versions = this.versions;
    if (versions !== null) versions.join();
    const poll = this.poll;
    if (poll !== null) poll.tick(this.table);
  }

  onHttpCallResponse(token: u32, headerCount: u32, bodySize: u32, trailerCount: u32): void {
    const state = this.state;
    if (state.shadowCalls.has(token)) {
      const exchange = state.shadowCalls.get(token);
      state.shadowCalls.delete(token);
      exchange.answered(token, headerCount, bodySize);
      return;
    }
    if (state.guardCalls.has(token)) {
      const call = state.guardCalls.get(token);
      state.guardCalls.delete(token);
      // The client may be gone: then there is no answer to replace and nothing may touch the stream.
      if (findStream(call.streamId) === null) return;
      if (!setEffectiveContext(call.streamId)) {
        call.guard.releaseRefused();
        return;
      }
      call.guard.stableAnswered(token, headerCount, bodySize);
      setEffectiveContext(this.id);
      return;
    }
    const poll = this.poll;
    if (poll === null || !poll.owns(token)) return;
    const next = poll.answered(headerCount, bodySize, this.table);
    if (next !== null) this.apply(next);
  }

  createStream(id: u32): StreamContextBase {
    const versions = this.versions;
    if (versions !== null && this.poll === null) versions.join();
    return new ModelrollStream(id, this, this.state);
  }
}
