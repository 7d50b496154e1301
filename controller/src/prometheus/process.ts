// Starting and stopping a real Prometheus server (Debian's `prometheus` package, 2.42 in Debian 12) that
// scrapes given targets, for tests and demos of PromQL gates. Its config and TSDB live in a fresh temp dir.
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnManaged } from "../child-process.ts";
import { freePort } from "../net.ts";

/** Where the Debian package puts the server. */
const DEFAULT_PROMETHEUS_BIN = "/usr/bin/prometheus";

/** The Prometheus binary: PROMETHEUS_BIN if set, else the Debian package's (the install step puts it there). */
function prometheusBinary(): string {
  const fromEnv = process.env.PROMETHEUS_BIN;
  if (fromEnv) return fromEnv;
  if (!existsSync(DEFAULT_PROMETHEUS_BIN)) {
    throw new Error(
      `Prometheus is not installed: run 'npm run test:tools -- prometheus' (it installs Debian's prometheus package at ${DEFAULT_PROMETHEUS_BIN}; the tests that need it do so themselves) or set PROMETHEUS_BIN`,
    );
  }
  return DEFAULT_PROMETHEUS_BIN;
}

export interface PrometheusProcess {
  /** e.g. http://127.0.0.1:41234 (give it to the controller as prometheusUrl). */
  url: string;
  port: number;
  child: ChildProcess;
  /** Everything Prometheus wrote to stderr so far (its log). */
  log(): string;
  stop(): Promise<void>;
}

interface StartPrometheusOptions {
  /** host:port of every endpoint to scrape (one job, "targets"). */
  scrapeTargets: string[];
  /** Default /stats/prometheus: Envoy's admin endpoint. */
  metricsPath?: string;
  /** Scrape interval (and timeout); default 1000 ms. Prometheus accepts whole milliseconds. */
  scrapeIntervalMs?: number;
  /** Port on 127.0.0.1; default a free one. */
  port?: number;
  logLevel?: "debug" | "info" | "warn" | "error";
  /**
   * Also wait until every target has been scraped successfully. Prometheus 2.x hands new targets to its
   * scrape loops on a 5 s ticker, so the first scrape comes about 5 s after /-/ready; a query before that
   * sees nothing. Default false (return once /-/ready answers).
   */
  waitForTargets?: boolean;
  /** Bound on the whole start (ready, and targets up when asked); default 20000 ms. */
  readyTimeoutMs?: number;
}

/** prometheus.yml for one scrape job. JSON is YAML, and quoting every string keeps odd paths intact. */
function renderPrometheusConfig(opts: Pick<StartPrometheusOptions, "scrapeTargets" | "metricsPath" | "scrapeIntervalMs">): string {
  const intervalMs = Math.round(opts.scrapeIntervalMs ?? 1000);
  if (!(intervalMs >= 1)) throw new Error(`startPrometheus: scrapeIntervalMs must be at least 1, got ${opts.scrapeIntervalMs}`);
  const interval = `${intervalMs}ms`;
  const config = {
    global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
    scrape_configs: [
      {
        job_name: "targets",
        metrics_path: opts.metricsPath ?? "/stats/prometheus",
        static_configs: [{ targets: opts.scrapeTargets }],
      },
    ],
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

export async function startPrometheus(opts: StartPrometheusOptions): Promise<PrometheusProcess> {
  if (opts.scrapeTargets.length === 0) throw new Error("startPrometheus: no scrape targets");
  for (const target of opts.scrapeTargets) {
    if (!/^[^\s/]+:\d{1,5}$/.test(target)) throw new Error(`startPrometheus: scrape target must be host:port, got '${target}'`);
  }
  const bin = prometheusBinary();
  const config = renderPrometheusConfig(opts);
  const port = opts.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), "modelroll-prometheus-"));
  const configPath = join(dir, "prometheus.yml");
  writeFileSync(configPath, config);
  const managed = spawnManaged(
    bin,
    [
      `--config.file=${configPath}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      `--log.level=${opts.logLevel ?? "info"}`,
    ],
    { workDir: dir, maxLogChars: 1_000_000 },
  );

  const url = `http://127.0.0.1:${port}`;
  const proc: PrometheusProcess = { url, port, child: managed.child, log: managed.log, stop: managed.stop };

  const readyTimeoutMs = opts.readyTimeoutMs ?? 20_000;
  const deadline = Date.now() + readyTimeoutMs;
  const failStart = async (what: string): Promise<never> => {
    await proc.stop();
    throw new Error(`prometheus (${bin}) on ${url}: ${what}:\n${managed.log().slice(-4000)}`);
  };
  let lastProblem = "not listening yet";
  let ready = false;
  while (!ready && Date.now() < deadline) {
    if (managed.exited() !== null) return failStart(`exited during start-up (${managed.exited()})`);
    try {
      const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) });
      const text = await res.text();
      // The body tells Prometheus from another server that got the port first.
      if (res.status === 200 && /prometheus/i.test(text) && managed.exited() === null) ready = true;
      else lastProblem = `/-/ready answered ${res.status}: ${text.trim().slice(0, 200)}`;
    } catch (error) {
      lastProblem = (error as Error).message;
    }
    if (!ready) await new Promise((r) => setTimeout(r, 100));
  }
  if (!ready) return failStart(`not ready within ${readyTimeoutMs} ms (${lastProblem})`);
  if (!opts.waitForTargets) return proc;

  lastProblem = "no active targets yet";
  while (Date.now() < deadline) {
    if (managed.exited() !== null) return failStart(`exited while waiting for its first scrapes (${managed.exited()})`);
    try {
      const res = await fetch(`${url}/api/v1/targets?state=active`, { signal: AbortSignal.timeout(1000) });
      const body = (await res.json()) as { data?: { activeTargets?: TargetStatus[] } };
      const targets = body.data?.activeTargets ?? [];
      const notUp = targets.filter((t) => t.health !== "up");
      if (targets.length >= opts.scrapeTargets.length && notUp.length === 0) return proc;
      if (targets.length > 0) lastProblem = notUp.map((t) => `${t.scrapeUrl} ${t.health}${t.lastError ? `: ${t.lastError}` : ""}`).join("; ");
    } catch (error) {
      lastProblem = (error as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return failStart(`scrape targets not up within ${readyTimeoutMs} ms (${lastProblem})`);
}

/** One entry of /api/v1/targets (the fields used here). */
interface TargetStatus {
  scrapeUrl: string;
  health: "up" | "down" | "unknown";
  lastError: string;
}
