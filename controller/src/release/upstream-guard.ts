/**
 * Keeps every live rollout on the upstreams it was tested against (rollouts/upstreams.ts says why). What the
 * Envoy clusters reach comes from the launcher when it configured them (`npm start`: its --stable/--canary
 * flags or models file, known before the controller serves a single config, so a changed upstream is held
 * before any filter can route to it), or else from every Envoy admin endpoint's /clusters, read when the
 * controller starts and then every tick (`npm run controller`: a change is seen at the next reading; what the
 * filters do between two readings, and a server replaced behind the same address, it cannot see).
 */
import type { FastifyBaseLogger } from "fastify";
import { endpointText, readClusterEndpoints } from "../envoy/admin-clusters.ts";
import { parseUrlHostPort } from "../envoy/bootstrap.ts";
import { ConflictError } from "../errors.ts";
import type { NormalizedSpec, Rollout } from "../rollouts/model.ts";
import type { RolloutStore } from "../rollouts/store.ts";
import { acceptUpstreams, judgeUpstreams, observedUpstreams } from "../rollouts/upstream-check.ts";
import type { RolloutUpstreams, UpstreamMap } from "../rollouts/upstreams.ts";

/** Cluster name -> the URL (http://host:port) or host:port it reaches, as a launcher configured it. */
export type DeclaredUpstreams = Record<string, string>;

/** What the clusters reach: declared once, or read from the Envoy admins (the latest reading that worked). */
export class UpstreamReadings {
  readonly #adminUrls: readonly string[];
  readonly #timeoutMs: number;
  #map: UpstreamMap | null = null;
  /** Why the last admin reading failed; null after one that worked. */
  lastError: string | null = null;

  constructor(options: { declared?: DeclaredUpstreams; adminUrls?: readonly string[]; timeoutMs?: number }) {
    this.#timeoutMs = options.timeoutMs ?? 2000;
    if (options.declared) {
      const endpoints = new Map(Object.entries(options.declared).map(([cluster, url]) => [cluster, declaredEndpoint(cluster, url)]));
      this.#map = { source: "npm start", endpoints };
      this.#adminUrls = [];
    } else {
      this.#adminUrls = options.adminUrls ?? [];
    }
  }

  get map(): UpstreamMap | null {
    return this.#map;
  }

  /** True when the map comes from Envoy admins (and can change). */
  get reads(): boolean {
    return this.#adminUrls.length > 0;
  }

  /** A new rollout's record: what its clusters reach now, when known. */
  upstreamsOf(spec: NormalizedSpec, at: Date): RolloutUpstreams | null {
    const tested = this.#map ? observedUpstreams({ spec }, this.#map, at) : null;
    return tested ? { tested, hold: null, note: null } : null;
  }

  /** Reads the admins again; false (and lastError) when one of them could not be read. */
  async refresh(): Promise<boolean> {
    if (!this.reads) return this.#map !== null;
    try {
      this.#map = { source: "Envoy admin /clusters", endpoints: await readClusterEndpoints(this.#adminUrls, this.#timeoutMs) };
      this.lastError = null;
      return true;
    } catch (error) {
      this.lastError = (error as Error).message;
      return false;
    }
  }
}

function declaredEndpoint(cluster: string, url: string): string {
  const hostPort = /^[a-z]+:\/\//.test(url) ? parseUrlHostPort(url, `upstream of cluster ${cluster}`) : null;
  if (hostPort) return endpointText([hostPort]);
  const m = /^(.+):(\d+)$/.exec(url);
  if (!m?.[1]) throw new Error(`upstream of cluster ${cluster}: expected http://host:port or host:port, got '${url}'`);
  return endpointText([{ host: m[1].replace(/^\[|\]$/g, ""), port: Number(m[2]) }]);
}

export class UpstreamGuard {
  readonly store: RolloutStore;
  readonly readings: UpstreamReadings;
  readonly #clock: () => Date;
  readonly #log: FastifyBaseLogger | undefined;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<string[]> | null = null;
  #stopped = false;

  constructor(options: { store: RolloutStore; readings: UpstreamReadings; clock?: () => Date; log?: FastifyBaseLogger }) {
    this.store = options.store;
    this.readings = options.readings;
    this.#clock = options.clock ?? (() => new Date());
    this.#log = options.log;
  }

  /** Compares every live rollout with the latest reading and applies the verdicts; returns the rollouts held now. */
  check(): string[] {
    const at = this.#clock();
    const held: string[] = [];
    for (const rollout of this.store.list()) {
      const verdict = judgeUpstreams(rollout, this.readings.map, at);
      if (verdict.kind === "write") this.store.setUpstreams(rollout.spec.name, { upstreams: verdict.upstreams });
      if (verdict.kind === "hold") {
        this.store.setUpstreams(rollout.spec.name, {
          upstreams: verdict.upstreams,
          weights: { canaryPercent: 0, shadowPercent: 0 },
          decision: verdict.decision,
        });
        this.#log?.warn({ rollout: rollout.spec.name }, verdict.upstreams.hold?.reason ?? "held");
        held.push(rollout.spec.name);
      }
    }
    return held;
  }

  /** A new reading (admins only), then a check; the rollouts it held. */
  refresh(): Promise<string[]> {
    this.#running ??= (async () => {
      const read = await this.readings.refresh();
      if (this.#stopped) return [];
      if (read) {
        try {
          return this.check();
        } catch (error) {
          // A failed write changes nothing (the store's rule); the next reading tries again.
          this.#log?.error({ err: error }, "upstreams: check failed");
          return [];
        }
      }
      this.#log?.debug({ error: this.readings.lastError }, "upstreams: Envoy admin not readable");
      return [];
    })().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  /** An operator accepts the changed upstreams of a held rollout (409 with the reason when it cannot). */
  async accept(name: string, by: string, reason: string | null): Promise<Rollout> {
    if (this.readings.reads) await this.readings.refresh();
    const result = acceptUpstreams(this.store.get(name), this.readings.map, by, reason, this.#clock());
    if (typeof result === "string") throw new ConflictError(result);
    return this.store.setUpstreams(name, result);
  }

  /** Reads the admins every intervalMs (nothing to do with declared upstreams: they cannot change under a running controller). */
  start(intervalMs: number): void {
    if (this.#timer || intervalMs <= 0 || !this.readings.reads) return;
    this.#stopped = false;
    const schedule = () => {
      if (this.#stopped) return;
      this.#timer = setTimeout(() => void this.refresh().finally(schedule), intervalMs);
      this.#timer.unref?.();
    };
    schedule();
  }

  /** No more readings; waits for one under way. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#running;
  }
}
