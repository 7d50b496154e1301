/**
 * `modelroll traffic` (and `npm start -- --demo-traffic RATE`): steady requests through the data plane from many
 * users, the way the examples need it (80-100 requests/s with an x-user-id from many users), and what each
 * variant answered, read from the answer's variant header (x-rollout-variant: stable | canary).
 *
 * Open loop at a fixed rate: requests are started on schedule whether or not earlier ones have answered, so a
 * slow canary does not slow the traffic down (as real users would not); at most `maxInFlight` are open at once,
 * and a request that would exceed that is counted as skipped rather than sent late. Users are drawn from a
 * fixed pseudo-random sequence, so two runs send the same users in the same order. The tally is pure; runTraffic
 * does the I/O through the effects it is given.
 */
import { count, duration, table, type Paint } from "./format.ts";
import type { TrafficOptions } from "./plan.ts";

export type { TrafficOptions };

export const TRAFFIC_DEFAULTS = {
  url: "http://127.0.0.1:10000",
  path: "/v1/predict",
  rate: 20,
  users: 1000,
  durationMs: 60_000,
  method: "POST",
  body: '{"features":[1,2,3]}',
  userHeader: "x-user-id",
  variantHeader: "x-rollout-variant",
  headers: {},
  maxInFlight: 256,
  timeoutMs: 10_000,
} as const satisfies TrafficOptions;

/** Bounds, so a typo cannot flood a machine or run for ever by accident. */
export const TRAFFIC_LIMITS = { maxRate: 2000, maxUsers: 10_000_000, maxDurationMs: 24 * 3600 * 1000 } as const;

interface VariantCounts {
  requests: number;
  "2xx": number;
  "4xx": number;
  "5xx": number;
  latenciesMs: number[];
}

export interface VariantSummary {
  requests: number;
  /** This variant's share of the answered requests, percent. */
  sharePercent: number;
  "2xx": number;
  "4xx": number;
  "5xx": number;
  p50Ms: number | null;
  p95Ms: number | null;
}

export interface TrafficSummary {
  seconds: number;
  sent: number;
  answered: number;
  /** Sent, no answer (refused, reset, timed out). */
  failed: number;
  /** Not sent: maxInFlight requests were still open. */
  skipped: number;
  /** The first reason a request got no answer, and how often each reason came. */
  failures: Record<string, number>;
  /** Per variant as the answer's variant header named it; "(none)" when the answer had none (no rollout on the path). */
  variants: Record<string, VariantSummary>;
}

/** Latencies kept per variant at most (uniform reservoir beyond): quantiles of a long run in bounded memory. */
const KEEP = 20_000;

/** What came back, per variant. Pure. */
export class TrafficTally {
  readonly #variants = new Map<string, VariantCounts>();
  readonly #failures = new Map<string, number>();
  #random = lcg(7);
  sent = 0;
  failed = 0;
  skipped = 0;

  answered(variant: string | null, status: number, latencyMs: number): void {
    const key = variant ?? "(none)";
    let v = this.#variants.get(key);
    if (!v) this.#variants.set(key, (v = { requests: 0, "2xx": 0, "4xx": 0, "5xx": 0, latenciesMs: [] }));
    v.requests++;
    if (status >= 200 && status < 300) v["2xx"]++;
    else if (status >= 400 && status < 500) v["4xx"]++;
    else if (status >= 500) v["5xx"]++;
    if (v.latenciesMs.length < KEEP) v.latenciesMs.push(latencyMs);
    else {
      const slot = Math.floor(this.#random() * v.requests);
      if (slot < KEEP) v.latenciesMs[slot] = latencyMs;
    }
  }

  noAnswer(reason: string): void {
    this.failed++;
    this.#failures.set(reason, (this.#failures.get(reason) ?? 0) + 1);
  }

  summary(seconds: number): TrafficSummary {
    const answered = [...this.#variants.values()].reduce((n, v) => n + v.requests, 0);
    const variants: Record<string, VariantSummary> = {};
    for (const [name, v] of [...this.#variants].sort(([a], [b]) => variantOrder(a) - variantOrder(b) || a.localeCompare(b))) {
      const sorted = [...v.latenciesMs].sort((a, b) => a - b);
      variants[name] = {
        requests: v.requests,
        sharePercent: answered > 0 ? Math.round((v.requests / answered) * 10_000) / 100 : 0,
        "2xx": v["2xx"],
        "4xx": v["4xx"],
        "5xx": v["5xx"],
        p50Ms: quantile(sorted, 0.5),
        p95Ms: quantile(sorted, 0.95),
      };
    }
    return {
      seconds: Math.round(seconds * 10) / 10,
      sent: this.sent,
      answered,
      failed: this.failed,
      skipped: this.skipped,
      failures: Object.fromEntries(this.#failures),
      variants,
    };
  }
}

const variantOrder = (name: string) => ({ stable: 0, canary: 1 })[name] ?? 2;

function quantile(sorted: number[], q: number): number | null {
  if (sorted.length === 0) return null;
  const value = sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? null;
  return value === null ? null : Math.round(value * 10) / 10;
}

/** A small deterministic generator (the users' order), 0 <= x < 1. */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

export interface TrafficEffects {
  fetch: typeof fetch;
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** Stops the run early (Ctrl-C, the stack stopping); the summary is still returned. */
  signal: AbortSignal;
  /** Every progressEveryMs, the summary so far. */
  onProgress?: (summary: TrafficSummary) => void;
  progressEveryMs?: number;
}

/** Sends the traffic; returns what came back once the duration has passed (or the signal aborted) and every request has ended. */
export async function runTraffic(options: TrafficOptions, effects: TrafficEffects): Promise<TrafficSummary> {
  const tally = new TrafficTally();
  const nextUser = lcg(1);
  const url = `${options.url.replace(/\/+$/, "")}${options.path}`;
  const start = effects.now();
  const open = new Set<Promise<void>>();
  const progressEvery = effects.progressEveryMs ?? 10_000;
  let nextProgress = start + progressEvery;
  const send = () => {
    tally.sent++;
    const user = `user-${Math.floor(nextUser() * options.users)}`;
    const began = effects.now();
    const request = effects
      .fetch(url, {
        method: options.method,
        headers: { ...options.headers, [options.userHeader]: user, ...(options.method === "POST" ? { "content-type": "application/json" } : {}) },
        body: options.method === "POST" ? options.body : undefined,
        signal: AbortSignal.timeout(options.timeoutMs),
      })
      .then(async (response) => {
        await response.arrayBuffer().catch(() => undefined);
        tally.answered(response.headers.get(options.variantHeader), response.status, effects.now() - began);
      })
      .catch((error: unknown) => tally.noAnswer(reasonOf(error)))
      .finally(() => open.delete(request));
    open.add(request);
  };
  // Request i is due at start + i / rate; each wake-up sends the ones due by then. A bounded run sends exactly
  // rate × duration requests (the last one due just before the duration ends).
  const total = options.durationMs === null ? Number.POSITIVE_INFINITY : Math.max(1, Math.round((options.durationMs / 1000) * options.rate));
  let due = 0;
  while (!effects.signal.aborted && due < total) {
    const elapsed = effects.now() - start;
    const target = Math.min(total, Math.floor((elapsed / 1000) * options.rate) + 1);
    for (; due < target; due++) {
      if (open.size >= options.maxInFlight) tally.skipped++;
      else send();
    }
    if (effects.onProgress && effects.now() >= nextProgress) {
      effects.onProgress(tally.summary((effects.now() - start) / 1000));
      nextProgress += progressEvery;
    }
    if (due >= total) break;
    const wait = Math.max(1, Math.min(50, (due / options.rate) * 1000 - (effects.now() - start)));
    await effects.sleep(wait, effects.signal).catch(() => undefined);
  }
  await Promise.all([...open]);
  return tally.summary((effects.now() - start) / 1000);
}

function reasonOf(error: unknown): string {
  const name = (error as { name?: string })?.name;
  if (name === "TimeoutError" || name === "AbortError") return "no answer in time";
  const cause = (error as { cause?: { code?: string; message?: string } })?.cause;
  return cause?.code ?? cause?.message ?? (error as Error)?.message ?? String(error);
}

/** One line while it runs: "  10s  sent 200  stable 190 (95%)  canary 10 (5%)  no answer 0". */
export function progressLine(s: TrafficSummary): string {
  const parts = Object.entries(s.variants).map(([name, v]) => `${name} ${count(v.requests)} (${v.sharePercent}%)`);
  return `  ${duration(s.seconds * 1000).padStart(5)}  sent ${count(s.sent)}  ${parts.join("  ") || "no answer yet"}${s.failed > 0 ? `  no answer ${count(s.failed)}` : ""}\n`;
}

/** The end: per variant what came back, then what did not. */
export function renderTraffic(s: TrafficSummary, options: Pick<TrafficOptions, "rate" | "path" | "variantHeader">, p: Paint): string {
  const rows = Object.entries(s.variants).map(([name, v]) => [
    name,
    count(v.requests),
    `${v.sharePercent}%`,
    count(v["2xx"]),
    count(v["4xx"]),
    count(v["5xx"]),
    v.p50Ms === null ? "-" : `${v.p50Ms} ms`,
    v.p95Ms === null ? "-" : `${v.p95Ms} ms`,
  ]);
  const head = `sent ${count(s.sent)} requests to ${options.path} in ${duration(s.seconds * 1000)} (${options.rate}/s asked); ${count(s.answered)} answered, by ${options.variantHeader}:\n`;
  const lines = [head, rows.length > 0 ? table(["VARIANT", "ANSWERS", "SHARE", "2XX", "4XX", "5XX", "P50", "P95"], rows, p) : "  (no answers)\n"];
  if (s.failed > 0) {
    const why = Object.entries(s.failures)
      .sort(([, a], [, b]) => b - a)
      .map(([reason, n]) => `${reason} ×${count(n)}`)
      .join(", ");
    lines.push(`${p.red(`no answer: ${count(s.failed)} (${why})`)}\n`);
  }
  if (s.skipped > 0) lines.push(`${p.yellow(`not sent: ${count(s.skipped)} (too many requests still open; the data plane is slower than the rate)`)}\n`);
  return lines.join("");
}
