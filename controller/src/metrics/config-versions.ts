/**
 * Which config version each proxy runs, read back from the filter's version gauges (filter/stats.ts names
 * them): from every Envoy admin endpoint, or from Prometheus (one proxy per `instance`). The engine waits for
 * these before a stage's window starts (engine/propagation.ts).
 *
 * Envoy keeps one gauge per name for all the worker VMs of a plugin, so each root context only adds and
 * subtracts its own part: `contexts` (root contexts alive), `slot_<v mod 16>_contexts` (contexts running
 * version v) and `version_sum` (the sum of their versions). Knowing the newest version C, a slot k stands for
 * the newest v <= C with v mod 16 = k; the decoded sum equals `version_sum` only when that holds for every
 * context, else some context is 16 or more versions behind (or from another controller's epoch).
 */
import { describeFetchError } from "../net.ts";
import { CONFIG_SERIES } from "./envoy-series.ts";
import type { PrometheusClient } from "./prometheus-http.ts";
import { parsePrometheusText } from "./prometheus-text.ts";

/** The filter's ring size (filter/stats.ts CONFIG_VERSION_SLOTS). */
export const CONFIG_VERSION_SLOTS = 16;

/** One proxy's version gauges as read. */
export interface ConfigGauges {
  contexts: number;
  versionSum: number;
  /** Contexts per slot, index = version mod CONFIG_VERSION_SLOTS. */
  slots: number[];
}

/** One proxy as asked: its gauges, or why they could not be read. */
export interface ProxyGauges {
  /** The admin URL, or the Prometheus instance. */
  proxy: string;
  gauges: ConfigGauges | null;
  error: string | null;
}

/** What one proxy runs, decoded against the newest version. */
export interface ProxyVersion {
  proxy: string;
  /** The oldest version any of its contexts runs; null when that cannot be told (see `note`). */
  oldest: number | null;
  /** Root contexts (one per worker VM that polls or holds a table). */
  contexts: number;
  /** Contexts per version, newest first. */
  versions: Array<{ version: number; contexts: number }>;
  /** Why `oldest` is null, or what else is wrong (unreadable, contexts without a table). */
  note: string | null;
}

export interface ConfigVersionSource {
  /** Every proxy this source knows; a proxy that could not be read is listed with its error. */
  read(at: number): Promise<ProxyGauges[] | { error: string }>;
}

/** The gauges out of /stats/prometheus text (or of a Prometheus answer's samples). */
export function gaugesFromSamples(samples: Iterable<{ name: string; value: number }>): ConfigGauges | null {
  const slots = new Array<number>(CONFIG_VERSION_SLOTS).fill(0);
  let contexts: number | null = null;
  let versionSum = 0;
  for (const { name, value } of samples) {
    if (name === CONFIG_SERIES.contexts) contexts = value;
    else if (name === CONFIG_SERIES.versionSum) versionSum = value;
    else {
      const m = CONFIG_SERIES.slot.exec(name);
      const k = m ? Number(m[1]) : -1;
      if (k >= 0 && k < CONFIG_VERSION_SLOTS) slots[k] = value;
    }
  }
  return contexts === null ? null : { contexts, versionSum, slots };
}

/** What a proxy runs, given the newest version any proxy can have (read after the gauges). */
export function decodeVersions(proxy: ProxyGauges, newest: number): ProxyVersion {
  const none = (note: string, contexts = 0): ProxyVersion => ({ proxy: proxy.proxy, oldest: null, contexts, versions: [], note });
  if (proxy.error !== null) return none(`unreadable: ${proxy.error}`);
  const g = proxy.gauges;
  if (g === null) return none("reports no config version (a filter older than this controller, or no modelroll filter)");
  const versions: Array<{ version: number; contexts: number }> = [];
  let decodedSum = 0;
  let withTable = 0;
  for (let k = 0; k < CONFIG_VERSION_SLOTS; k++) {
    const n = g.slots[k] ?? 0;
    if (n <= 0) continue;
    const version = newest - ((((newest - k) % CONFIG_VERSION_SLOTS) + CONFIG_VERSION_SLOTS) % CONFIG_VERSION_SLOTS);
    versions.push({ version, contexts: n });
    decodedSum += n * version;
    withTable += n;
  }
  versions.sort((a, b) => b.version - a.version);
  if (g.contexts <= 0) return none("no worker has started the filter yet");
  if (withTable < g.contexts) return { ...none(`${g.contexts - withTable} of ${g.contexts} workers have no config yet`, g.contexts), versions };
  if (decodedSum !== g.versionSum || withTable !== g.contexts) {
    return { ...none(`a worker runs a version ${CONFIG_VERSION_SLOTS} or more behind ${newest} (or another controller's)`, g.contexts), versions };
  }
  const oldest = versions.length > 0 ? (versions[versions.length - 1]?.version ?? null) : null;
  return { proxy: proxy.proxy, oldest, contexts: g.contexts, versions, note: null };
}

/** Each Envoy's admin endpoint. */
export class EnvoyAdminConfigVersions implements ConfigVersionSource {
  readonly #urls: string[];
  readonly #timeoutMs: number;
  constructor(adminUrls: readonly string[], timeoutMs = 2000) {
    this.#urls = adminUrls.map((u) => u.replace(/\/+$/, ""));
    this.#timeoutMs = timeoutMs;
  }

  async read(): Promise<ProxyGauges[]> {
    return Promise.all(
      this.#urls.map(async (url): Promise<ProxyGauges> => {
        try {
          const response = await fetch(url + CONFIG_STATS_PATH, { signal: AbortSignal.timeout(this.#timeoutMs) });
          const body = await response.text();
          if (!response.ok) return { proxy: url, gauges: null, error: `HTTP ${response.status}` };
          return { proxy: url, gauges: gaugesFromSamples(parsePrometheusText(body).samples), error: null };
        } catch (error) {
          return { proxy: url, gauges: null, error: describeFetchError(error, this.#timeoutMs) };
        }
      }),
    );
  }
}

/** The filter-wide config stats only. */
const CONFIG_STATS_PATH = `/stats/prometheus?filter=${encodeURIComponent("^wasmcustom\\.modelroll\\.config\\.")}`;

/** Prometheus: one proxy per `instance` label (else per label set) of the gauges' series. */
export class PrometheusConfigVersions implements ConfigVersionSource {
  constructor(readonly client: PrometheusClient) {}

  async read(at: number): Promise<ProxyGauges[] | { error: string }> {
    const answer = await this.client.vector(`{__name__=~"${CONFIG_SERIES.promRegex}"}`, at);
    if (!answer.ok) return { error: `prometheus ${this.client.baseUrl}: ${answer.error}` };
    const byProxy = new Map<string, Array<{ name: string; value: number }>>();
    for (const s of answer.samples) {
      const { __name__: name, ...rest } = s.labels;
      if (!name) continue;
      const proxy = rest.instance ?? (JSON.stringify(Object.entries(rest).sort()) || "unlabelled");
      const list = byProxy.get(proxy) ?? [];
      list.push({ name, value: s.value });
      byProxy.set(proxy, list);
    }
    return [...byProxy.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([proxy, samples]) => ({ proxy, gauges: gaugesFromSamples(samples), error: null }));
  }
}
