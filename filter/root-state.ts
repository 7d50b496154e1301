// What a root context shares with its streams: the plugin config and rollouts in force, the random source for
// requests without a sticky key, and the calls in flight that outlive a stream (answered on the root).
import { PluginConfig } from "./config-model";
import { ActiveSet } from "./active";
import { RandomBuckets } from "./routing";
import { ShadowExchange } from "./exchange";
import { GuardCall } from "./guard";

export class RootState {
  plugin: PluginConfig = new PluginConfig();
  // No config yet means no rollout matches, so every request goes to stable.
  active: ActiveSet = new ActiveSet();
  random: RandomBuckets = new RandomBuckets(0);
  /** Mirrored calls in flight on this worker, by call token. */
  shadowCalls: Map<u32, ShadowExchange> = new Map();
  /** Output-guard calls in flight, by call token: the stream whose held answer each may replace. */
  guardCalls: Map<u32, GuardCall> = new Map();

  constructor(public readonly rootId: u32) {}
}
