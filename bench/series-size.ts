// Bytes of telemetry history per rollout-hour, measured on the real stack (Envoy with the filter, demo
// models): a rollout with a 4-value segment dimension, output analysis (labels, confidence, schema) and a
// shadow stage mirroring half of the traffic, under steady traffic so every engine tick writes a snapshot.
// The snapshots of a short run at a fast tick are measured (table pages in the state file, via SQLite's
// dbstat) and scaled to the default 5 s tick: 720 snapshots an hour. `npx tsx bench/series-size.ts`.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { api, managedSpec, sendMany, startStack, waitFor } from "../test/e2e/harness.ts";
import { present } from "./lib.ts";

const SNAPSHOTS = Number(process.env.SNAPSHOTS ?? 40);
const dir = mkdtempSync(join(tmpdir(), "modelroll-series-size-"));
const stack = await startStack({ controller: { tickIntervalMs: 500, stateFile: join(dir, "state.db") } });
const ctl = present(stack.controller, "controller in the stack").url;
const spec = managedSpec("sized", "errors above 1%", {
  segments: [{ name: "tenant_tier", header: "x-tenant-tier", values: ["free", "pro", "enterprise"] }],
  shadow: { percent: 50 },
  output: {
    predictionField: "prediction",
    confidenceField: "confidence",
    labels: ["approve", "review", "decline"],
    schema: { type: "object", required: ["prediction", "confidence"], properties: { prediction: { enum: ["approve", "review", "decline"] } } },
  },
  stages: [
    { shadow: true, minDurationSeconds: 3600, minRequests: 100000, deadlineSeconds: 7200 },
    { canaryPercent: 50, minDurationSeconds: 3600, minRequests: 100000, deadlineSeconds: 7200 },
    100,
  ],
  promotion_gates: { error_rate: { maximum: 0.01 }, schema_validation_pass_rate: { minimum: 0.99 }, latency_p95_ms: { maximum_regression_percent: 10 } },
});
const created = await api(ctl, "POST", "/v1/rollouts", spec);
if (created.status !== 201) throw new Error(JSON.stringify(created.json));
await waitFor("the shadow stage", async () => (await api(ctl, "GET", "/v1/rollouts/sized")).json.phase === "Shadowing", 10_000, 50);
const app = (stack.controller as unknown as { app: import("fastify").FastifyInstance }).app;
// The cost of taking a snapshot, on the engine's tick: timed around every call.
const recorder = app.modelroll.recorder;
const record = recorder.record.bind(recorder);
const costs: number[] = [];
recorder.record = (...args: Parameters<typeof record>) => {
  const t = performance.now();
  record(...args);
  costs.push(performance.now() - t);
};
const tiers = ["free", "pro", "enterprise", "other"];
let n = 0;
const until = async (rows: number) => {
  while (app.modelroll.series.size("sized").rows < rows) {
    await sendMany(
      `${stack.dataUrl}/sized/p`,
      20,
      (i) => ({ "x-user-id": `u${n + i}`, "x-tenant-tier": tiers[(n + i) % 4] }),
      8,
      (i) => `{"n":${n + i}}`,
    );
    n += 20;
  }
};
await until(SNAPSHOTS / 2);
// Half of the run in the shadow stage, half in a canary stage (different slices and variants).
await api(ctl, "POST", "/v1/rollouts/sized/promote");
const before = app.modelroll.series.size("sized").rows;
await until(before + SNAPSHOTS / 2);
const db = app.modelroll.state.database;
const { rows, dataBytes } = app.modelroll.series.size("sized");
let tableBytes: number | null = null;
try {
  tableBytes = (
    db.prepare("SELECT SUM(pgsize) AS bytes FROM dbstat WHERE name IN ('series', 'series_by_rollout', 'series_by_time')").get() as { bytes: number }
  ).bytes;
} catch {
  tableBytes = null;
}
const perRow = (tableBytes ?? dataBytes) / rows;
console.log(`${rows} snapshots of rollout 'sized' (4 tenant tiers, output analysis, shadow then canary stage), ${n} requests`);
console.log(
  `data column: ${(dataBytes / rows).toFixed(0)} bytes per snapshot; series table and its indexes in the state file: ${tableBytes === null ? "dbstat not available" : `${(tableBytes / rows).toFixed(0)} bytes per snapshot`}`,
);
console.log(
  `per rollout-hour at the default 5 s tick (720 snapshots): ${((perRow * 720) / 1024).toFixed(0)} KiB; the default 7 days of retention for one rollout with traffic all along: ${((perRow * 720 * 24 * 7) / 1024 / 1024).toFixed(0)} MiB`,
);
costs.sort((a, b) => a - b);
console.log(
  `taking a snapshot (window, encoding, deflate, insert): median ${costs[Math.floor(costs.length / 2)].toFixed(2)} ms, p95 ${costs[Math.floor(costs.length * 0.95)].toFixed(2)} ms over ${costs.length} ticks`,
);
await stack.stop();
rmSync(dir, { recursive: true, force: true });
