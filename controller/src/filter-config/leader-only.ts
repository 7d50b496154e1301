/**
 * A config distributor that only the leader may drive (one that writes somewhere shared, such as a WasmPlugin in
 * the API server): followers keep the latest config and publish nothing; a replica that becomes leader publishes
 * the latest at once, so a push a deposed leader had not made is made by its successor.
 *
 * The long-poll is not wrapped: every replica serves GET /v1/filter-config from its own watch-fed view of the
 * committed rollouts, so a filter polling any replica through the Service gets the same committed config (at
 * most a watch delay behind) and the leader is no single point the proxies depend on.
 */
import type { ConfigDistributor } from "./distributor.ts";
import type { FilterConfig } from "./projection.ts";

interface LeaderGate {
  isLeader(): boolean;
  onChange(listener: (role: "leader" | "follower") => void): () => void;
}

export class LeaderOnlyDistributor implements ConfigDistributor {
  readonly kind: string;
  readonly #inner: ConfigDistributor;
  readonly #gate: LeaderGate;
  readonly #unsubscribe: () => void;
  #latest: FilterConfig | null = null;

  constructor(inner: ConfigDistributor, gate: LeaderGate) {
    this.#inner = inner;
    this.#gate = gate;
    this.kind = inner.kind;
    this.#unsubscribe = gate.onChange((role) => {
      if (role === "leader" && this.#latest) this.#inner.publish(this.#latest);
    });
  }

  publish(config: FilterConfig): void {
    this.#latest = config;
    if (this.#gate.isLeader()) this.#inner.publish(config);
  }

  close(): void {
    this.#unsubscribe();
    this.#inner.close();
  }
}
