/**
 * How the filter config reaches the proxies. The store says when the config version moves; the distribution
 * projects the config once (projection.ts) and hands the same object to every distributor, in commit order and
 * in the same synchronous turn as the commit, so a rollback reaches each of them without waiting for anything.
 *
 * The long-poll (long-poll.ts: the filters' GET /v1/filter-config) is the first distributor. Another way
 * (Istio ECDS, a static pluginConfig written out) is one more class implementing ConfigDistributor, added to the
 * list buildApp gives startDistribution().
 */
import { incrementalProjection, type ConfigSource, type FilterConfig } from "./projection.ts";

export interface ConfigDistributor {
  /** For logs and telemetry: "long-poll", "ecds", ... */
  readonly kind: string;
  /**
   * The config the proxies should have now: called once when the distribution starts, then after every
   * commit that moved the version. Runs inside the commit, so it must not block; work that waits (a push over
   * the network) is started here and finished on its own.
   */
  publish(config: FilterConfig): void;
  /** Lets go of what it holds (held requests, connections). Called once, at shutdown. */
  close(): void;
}

/** The store as the distribution follows it. */
interface DistributedSource extends ConfigSource {
  /** Calls `listener` after every commit that moved the config version; returns the unsubscribe. */
  onConfigChange(listener: (version: number) => void): () => void;
}

interface DistributionOptions {
  /**
   * Told when a distributor threw. The change is committed (and the other distributors have it) by then, so a
   * failing distributor must not fail the write that made it: buildApp logs it. Without it, the first error is
   * rethrown once every distributor was called.
   */
  onError?: (distributor: ConfigDistributor, error: unknown) => void;
}

/**
 * Publishes the current config to every distributor, then each new one as the store commits it. A distributor
 * that throws does not keep the others from theirs. Returns the stop function (which also closes the
 * distributors).
 */
export function startDistribution(source: DistributedSource, distributors: readonly ConfigDistributor[], options: DistributionOptions = {}): () => void {
  const project = incrementalProjection();
  const publish = () => {
    const config = project(source);
    let failure: { error: unknown } | null = null;
    for (const distributor of distributors) {
      try {
        distributor.publish(config);
      } catch (error) {
        if (options.onError) options.onError(distributor, error);
        else failure ??= { error };
      }
    }
    if (failure !== null) throw failure.error;
  };
  publish();
  const unsubscribe = source.onConfigChange(publish);
  let stopped = false;
  return () => {
    if (stopped) return;
    stopped = true;
    unsubscribe();
    for (const distributor of distributors) distributor.close();
  };
}
