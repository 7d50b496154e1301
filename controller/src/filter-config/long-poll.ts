/**
 * The filters' long-poll (GET /v1/filter-config, routes.ts) as a config distributor: it keeps the config last
 * published and holds polls until the version moves past the one they have.
 */
import type { ConfigDistributor } from "./distributor.ts";
import type { FilterConfig } from "./projection.ts";
import { VersionWatch, type WaitOutcome } from "./version-watch.ts";

export class LongPollDistributor implements ConfigDistributor {
  readonly kind = "long-poll";
  #config: FilterConfig | null = null;
  readonly #watch = new VersionWatch(() => this.config.version);

  publish(config: FilterConfig): void {
    this.#config = config;
    this.#watch.notify();
  }

  /** The config last published (startDistribution publishes one before any request can arrive). */
  get config(): FilterConfig {
    if (this.#config === null) throw new Error("filter config: nothing published yet (the distribution has not started)");
    return this.#config;
  }

  /** Polls held now. */
  get held(): number {
    return this.#watch.held;
  }

  waitForChange(sinceVersion: number, timeoutMs: number, signal?: AbortSignal): Promise<WaitOutcome> {
    return this.#watch.waitForChange(sinceVersion, timeoutMs, signal);
  }

  /** Releases every held poll (they answer 304), so server shutdown does not wait for their timeouts. */
  close(): void {
    this.#watch.close();
  }
}
