// PromQL gates against a real Prometheus server (Debian's prometheus package) scraping the real Envoy's
// /stats/prometheus every 250 ms. The controller's driver asks Prometheus every 250 ms tick; each gate
// here is the canary's 5xx ratio of one rollout, from the filter's own per-variant counters:
//   a. a good canary passes the gate and leaves its first stage;
//   b. a canary answering 30% errors fails it and is rolled back, the decision naming the gate and value;
//   c. with Prometheus down the gate reads Error: the rollout holds (no rollback, no promotion) and moves on
//      once Prometheus is back.
// Each test prints what it measured.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPrometheus, type PrometheusProcess } from "../../controller/src/prometheus/process.ts";
import {
  api,
  createManaged,
  decisionsOf,
  freePort,
  managedSpec,
  phaseOf as rolloutPhase,
  sendMany,
  startStack,
  waitFor,
  type DecisionView,
  type Stack,
} from "./harness.ts";

const SCRAPE_MS = 250;

let stack: Stack;
let prometheus: PrometheusProcess | null = null;
let prometheusPort: number;

async function startOurPrometheus(): Promise<PrometheusProcess> {
  return startPrometheus({
    scrapeTargets: [new URL(stack.adminUrl).host],
    port: prometheusPort,
    scrapeIntervalMs: SCRAPE_MS,
    waitForTargets: true,
    // Prometheus picks up new targets on a 5 s ticker; leave room on a busy machine.
    readyTimeoutMs: 30_000,
  });
}

beforeAll(async () => {
  // The controller takes its Prometheus URL at start, and Prometheus needs Envoy's admin port, which
  // startStack picks: reserve Prometheus' port first, start it once the stack is up. No rollout exists
  // in between, so nothing asks the empty port.
  prometheusPort = await freePort();
  stack = await startStack({ controller: { tickIntervalMs: 250, prometheusUrl: `http://127.0.0.1:${prometheusPort}` } });
  prometheus = await startOurPrometheus();
});

afterAll(async () => {
  await prometheus?.stop();
  await stack?.stop();
});

const ctl = () => stack.controller!.url;

const GATE = "canary_5xx_ratio";

/** The canary's share of 5xx (and locally generated) answers of one rollout over the last 10 s, from the filter's counters. */
function canary5xxRatio(rollout: string): string {
  const sel = `modelroll_rollout="${rollout}",modelroll_variant="canary"`;
  return `sum(increase(modelroll_responses{${sel},modelroll_class=~"5xx|local"}[10s])) / sum(increase(modelroll_responses{${sel}}[10s]))`;
}

const managed = (name: string, stage: { minDurationSeconds: number; deadlineSeconds: number }) =>
  managedSpec(name, "canary 5xx ratio above 5% (Prometheus)", {
    stages: [{ canaryPercent: 20, minRequests: 100, ...stage }, 100],
    // Only the PromQL gate: whatever decides, it is this gate.
    promotion_gates: { [GATE]: { query: canary5xxRatio(name), maximum: 0.05 } },
  });
const create = (spec: { name: string }) => createManaged(ctl(), spec);
const phaseOf = (name: string) => rolloutPhase(ctl(), name);
const decisions = (name: string) => decisionsOf(ctl(), name);

const gateOf = (d: DecisionView | undefined) => d?.measurements.find((m) => m.gate === GATE);

async function behave(behavior: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${stack.canary.url}/__demo/behavior`, { method: "PUT", body: JSON.stringify(behavior) });
  expect(res.status, await res.text()).toBe(200);
}

/** Sends batches of 100 requests through Envoy until `done()` or `timeoutMs`; returns requests sent. */
async function traffic(
  name: string,
  done: () => Promise<boolean>,
  timeoutMs: number,
): Promise<{ sent: number; canary: number; canary5xx: number; done: boolean }> {
  const started = performance.now();
  const out = { sent: 0, canary: 0, canary5xx: 0, done: false };
  while (performance.now() - started < timeoutMs) {
    if (await done()) return { ...out, done: true };
    const replies = await sendMany(`${stack.dataUrl}/${name}/predict`, 100, (i) => ({ "x-user-id": `${name}-${out.sent + i}` }), 16);
    out.sent += replies.length;
    out.canary += replies.filter((r) => r.variant === "canary").length;
    out.canary5xx += replies.filter((r) => r.variant === "canary" && r.status >= 500).length;
  }
  return { ...out, done: await done() };
}

/** One instant query straight to Prometheus (for printing and cross-checks); null for an empty vector. */
async function promValue(query: string): Promise<number | null> {
  const res = await fetch(`${prometheus!.url}/api/v1/query?${new URLSearchParams({ query })}`);
  const body = (await res.json()) as { status: string; data: { result: Array<{ value: [number, string] }> } };
  expect(body.status).toBe("success");
  return body.data.result.length === 0 ? null : Number(body.data.result[0].value[1]);
}

describe("PromQL gates with a real Prometheus scraping Envoy", () => {
  it("a. a good canary passes the PromQL gate and leaves its first stage", { timeout: 90_000 }, async () => {
    const name = "pq-good";
    await create(managed(name, { minDurationSeconds: 2, deadlineSeconds: 120 }));
    // An "advanced" decision is filed under the stage it passed (the first one: stage 0, 20%) and says where it went.
    const advanced = async () => (await decisions(name)).some((d) => d.kind === "advanced");
    const sent = await traffic(name, advanced, 60_000);
    const history = await decisions(name);
    const advance = history.find((d) => d.kind === "advanced");
    const holds = history.filter((d) => d.kind === "held").map((d) => gateOf(d)?.status ?? "-");
    console.log(
      `a. good canary: ${advance ? `passed stage ${advance.stage?.name}` : "still in its first stage"} after ${sent.sent} requests (${sent.canary} canary, ${sent.canary5xx} canary 5xx); ` +
        `gate statuses while held: ${holds.join(" -> ")}; at the advance: ${gateOf(advance)?.reason ?? "no measurement"}`,
    );
    expect(advance, JSON.stringify(history.map((d) => [d.kind, d.reason]))).toBeDefined();
    expect(advance!.stage?.index).toBe(0);
    expect(advance!.reason).toMatch(/^stage 20% passed: .*; on to 100%$/);
    expect(gateOf(advance)).toMatchObject({ status: "Passed" });
    expect(gateOf(advance)!.candidateValue).toBeGreaterThanOrEqual(0);
    expect(gateOf(advance)!.candidateValue).toBeLessThanOrEqual(0.05);
    expect(history.some((d) => d.kind === "rolledBack")).toBe(false);
    expect(["Canary", "Baking", "Succeeded", "AwaitingReview"]).toContain(await phaseOf(name));
  });

  it("b. a canary answering 30% errors fails the PromQL gate and is rolled back", { timeout: 120_000 }, async () => {
    const name = "pq-bad";
    // A long minimum duration: the stage cannot pass before the canary turns bad.
    await create(managed(name, { minDurationSeconds: 120, deadlineSeconds: 300 }));
    try {
      // First the gate measures the healthy canary through Prometheus (Passed, while the stage holds on its duration).
      const measuredGood = async () => (await decisions(name)).some((d) => gateOf(d)?.status === "Passed");
      const before = await traffic(name, measuredGood, 30_000);
      expect(before.done, JSON.stringify((await decisions(name)).map((d) => [d.kind, d.reason]))).toBe(true);
      const healthy = (await decisions(name)).map(gateOf).find((m) => m?.status === "Passed");

      await behave({ errorRate: 0.3 });
      const during = await traffic(name, async () => (await phaseOf(name)) === "RolledBack", 60_000);

      const history = await decisions(name);
      const rollback = history.find((d) => d.kind === "rolledBack");
      const envoy5xx = await promValue('sum(envoy_cluster_upstream_rq_xx{envoy_cluster_name="canary",envoy_response_code_class="5"})');
      const ratioNow = await promValue(canary5xxRatio(name));
      console.log(
        `b. 30% canary errors: ${await phaseOf(name)} after the canary turned bad; ${during.sent} requests since (${during.canary} canary, ${during.canary5xx} canary 5xx); ` +
          `gate before: ${healthy?.candidateValue}; gate at rollback: ${gateOf(rollback)?.candidateValue}; ratio in Prometheus now: ${ratioNow}; ` +
          `Envoy's own canary cluster 5xx counter in Prometheus: ${envoy5xx}; reason: ${rollback?.reason}`,
      );
      expect(during.done).toBe(true);
      expect(rollback).toBeDefined();
      const failed = gateOf(rollback)!;
      expect(failed.status).toBe("Failed");
      expect(failed.candidateValue).toBeGreaterThan(0.05);
      expect(rollback!.reason).toContain(GATE);
      expect(rollback!.reason).toContain(String(failed.candidateValue));
      // Envoy's cluster stats saw the same errors (a second opinion on what Prometheus scraped).
      expect(envoy5xx).toBeGreaterThan(0);

      await waitFor(
        "all traffic on stable",
        async () =>
          (await sendMany(`${stack.dataUrl}/${name}/predict`, 32, (i) => ({ "x-user-id": `after-${i}` }), 8)).every(
            (r) => r.variant === "stable" && r.modelVersion === "v1",
          ),
        5000,
        20,
      );
      expect((await api(ctl(), "GET", `/v1/rollouts/${name}`)).json.canaryPercent).toBe(0);
    } finally {
      await behave({ errorRate: 0 });
    }
  });

  it("c. with Prometheus unreachable the gate reads Error and the rollout holds; it moves on once Prometheus is back", { timeout: 150_000 }, async () => {
    const name = "pq-outage";
    await prometheus!.stop();
    prometheus = null;
    // Nothing listens at the controller's Prometheus URL now.
    await expect(fetch(`http://127.0.0.1:${prometheusPort}/-/ready`)).rejects.toThrow();

    await create(managed(name, { minDurationSeconds: 1, deadlineSeconds: 120 }));
    // Enough canary traffic and time that only the gate can be holding the stage.
    const started = performance.now();
    const held = await traffic(name, async () => performance.now() - started > 8000 || (await phaseOf(name)) !== "Canary", 30_000);
    let history = await decisions(name);
    const errorHold = history.find((d) => d.kind === "held" && gateOf(d)?.status === "Error");
    const view = (await api(ctl(), "GET", `/v1/rollouts/${name}`)).json;
    console.log(
      `c. Prometheus down: ${view.phase} at ${view.canaryPercent}% after ${held.sent} requests (${held.canary} canary); ` +
        `decisions: ${history.map((d) => d.kind).join(", ")}; gate: ${gateOf(errorHold)?.reason}`,
    );
    expect(view.phase).toBe("Canary");
    expect(view.canaryPercent).toBe(20);
    expect(held.canary).toBeGreaterThanOrEqual(100);
    expect(history.some((d) => d.kind === "rolledBack" || d.kind === "advanced" || d.kind === "failed")).toBe(false);
    expect(errorHold).toBeDefined();
    expect(gateOf(errorHold)!.reason).toMatch(/PromQL query failed: prometheus http:\/\/127\.0\.0\.1:\d+: /);
    // The last hold is waiting on the gate alone.
    const lastHold = history.filter((d) => d.kind === "held").at(-1)!;
    expect(lastHold.reason).toContain(`${GATE} Error`);
    expect(lastHold.reason).not.toMatch(/minimum duration|traffic:/);

    // Prometheus comes back (same port, empty TSDB): the gate measures again and the stage passes.
    prometheus = await startOurPrometheus();
    const after = await traffic(name, async () => (await decisions(name)).some((d) => d.kind === "advanced"), 60_000);
    history = await decisions(name);
    const advance = history.find((d) => d.kind === "advanced");
    console.log(`c. Prometheus back: stage passed after ${after.sent} more requests; gate: ${gateOf(advance)?.reason}`);
    expect(advance).toBeDefined();
    expect(gateOf(advance)).toMatchObject({ status: "Passed" });
  });
});
