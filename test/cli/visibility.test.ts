// The CLI's new pure parts: finalize and traffic plans, the models line and column, the observed share with its
// window, no ETA while paused; the traffic generator's schedule and tally with a fake clock and a fake data plane.
import { describe, expect, it } from "vitest";
import { paint } from "../../controller/src/cli/modelroll/format.ts";
import { buildPicture } from "../../controller/src/cli/modelroll/picture.ts";
import { planCommand } from "../../controller/src/cli/modelroll/program.ts";
import { renderList, renderRollout } from "../../controller/src/cli/modelroll/render-rollout.ts";
import { renderTraffic, runTraffic, TRAFFIC_DEFAULTS, type TrafficOptions } from "../../controller/src/cli/modelroll/traffic.ts";
import { formatValue } from "../../controller/src/engine/measurement.ts";
import { planStart } from "../../controller/src/cli/start-plan.ts";

const plan = (argv: string[], env: Record<string, string> = {}) => planCommand(argv, { env, isTTY: false, version: "1.2.3" });
const noColor = paint(false);
const NOW = Date.parse("2026-01-01T12:00:00Z");

describe("finalize", () => {
  it("plans POST finalize with the reason, --no-verify, If-Match, and the wait", () => {
    expect(plan(["finalize", "fraud"])).toMatchObject({
      plan: {
        command: {
          kind: "finalize",
          name: "fraud",
          wait: false,
          timeoutMs: 600_000,
          request: { method: "POST", path: "/v1/rollouts/fraud/finalize", body: {}, headers: {} },
        },
      },
    });
    expect(plan(["finalize", "fraud", "--no-verify", "--reason", "v2 deployed", "--if-revision", "9", "--wait", "--timeout", "90s"])).toMatchObject({
      plan: {
        command: {
          wait: true,
          timeoutMs: 90_000,
          request: { body: { reason: "v2 deployed", verify: false }, headers: { "if-match": '"9"' } },
        },
      },
    });
    expect(plan(["finalize", "fraud", "--wait", "--timeout", "soon"])).toEqual({ usage: "--timeout: expected a duration like 10m, 90s or 1h30m, got 'soon'" });
    expect(plan(["finalize"])).toMatchObject({ usage: expect.stringContaining("missing required argument 'name'") });
  });
});

describe("traffic", () => {
  it("is bounded by default, and every flag is checked with its name in the error", () => {
    const planned = plan(["traffic"]);
    expect(planned).toMatchObject({
      plan: { command: { kind: "traffic", bodyFile: null, options: { ...TRAFFIC_DEFAULTS, durationMs: 60_000 } } },
    });
    expect(
      plan([
        "traffic",
        "--data-url",
        "http://10.0.0.1:8000/",
        "--path",
        "/fraud/predict",
        "--rate",
        "90",
        "--users",
        "5000",
        "--duration",
        "5m",
        "-H",
        "X-Tenant-Tier: pro",
        "--body",
        "@req.json",
      ]),
    ).toMatchObject({
      plan: {
        command: {
          bodyFile: "req.json",
          options: { url: "http://10.0.0.1:8000", path: "/fraud/predict", rate: 90, users: 5000, durationMs: 300_000, headers: { "x-tenant-tier": "pro" } },
        },
      },
    });
    expect(plan(["traffic", "--until-stopped", "--get"], { MODELROLL_DATA_URL: "http://envoy:10000" })).toMatchObject({
      plan: { command: { options: { url: "http://envoy:10000", durationMs: null, method: "GET" } } },
    });
    expect(plan(["traffic", "--rate", "0"])).toEqual({ usage: "--rate: expected requests per second above 0 and at most 2000, got '0'" });
    expect(plan(["traffic", "--rate", "5000"])).toMatchObject({ usage: expect.stringMatching(/^--rate: /) });
    expect(plan(["traffic", "--users", "1.5"])).toMatchObject({ usage: expect.stringMatching(/^--users: /) });
    expect(plan(["traffic", "--duration", "48h"])).toMatchObject({ usage: expect.stringMatching(/^--duration: .*at most 24h/) });
    expect(plan(["traffic", "--path", "predict"])).toMatchObject({ usage: expect.stringMatching(/^--path: /) });
    expect(plan(["traffic", "--data-url", "10.0.0.1:80"])).toMatchObject({ usage: expect.stringMatching(/^--data-url: /) });
    expect(plan(["traffic", "-H", "no colon"])).toMatchObject({ usage: expect.stringMatching(/^--header: /) });
  });

  /** A fake data plane on a fake clock: odd users go to the canary, which fails every 10th answer. */
  function fakeRun(options: Partial<TrafficOptions>, abortAfterMs?: number) {
    let now = 0;
    const sent: Array<{ at: number; user: string }> = [];
    const controller = new AbortController();
    const run = runTraffic(
      { ...TRAFFIC_DEFAULTS, ...options },
      {
        now: () => now,
        sleep: async (ms) => {
          now += ms;
          if (abortAfterMs !== undefined && now >= abortAfterMs) controller.abort();
        },
        signal: controller.signal,
        fetch: (async (_url: string, init: RequestInit) => {
          const user = (init.headers as Record<string, string>)["x-user-id"] ?? "";
          sent.push({ at: now, user });
          if (user === "user-13") throw Object.assign(new TypeError("fetch failed"), { cause: { code: "ECONNRESET" } });
          const canary = Number(user.slice(5)) % 2 === 1;
          const status = canary && sent.length % 10 === 0 ? 503 : 200;
          return new Response("{}", { status, headers: canary ? { "x-rollout-variant": "canary" } : { "x-rollout-variant": "stable" } });
        }) as typeof fetch,
      },
    );
    return { run, sent: () => sent };
  }

  it("sends rate × duration requests on schedule from the users given, and tallies each variant by the answer's header", async () => {
    const { run, sent } = fakeRun({ rate: 50, users: 40, durationMs: 4000 });
    const summary = await run;
    expect(summary.sent).toBe(200);
    expect(sent()).toHaveLength(200);
    // On schedule: request i no earlier than i / rate, and never more than one wake-up late.
    sent().forEach((s, i) => {
      expect(s.at).toBeGreaterThanOrEqual(Math.floor((i * 1000) / 50) - 1);
      expect(s.at).toBeLessThanOrEqual((i * 1000) / 50 + 51);
    });
    expect(new Set(sent().map((s) => s.user)).size).toBeGreaterThan(30);
    expect(Math.max(...sent().map((s) => Number(s.user.slice(5))))).toBeLessThan(40);
    const { stable, canary } = summary.variants;
    expect(stable!.requests + canary!.requests + summary.failed).toBe(200);
    expect(summary.answered).toBe(stable!.requests + canary!.requests);
    expect(canary!["5xx"]).toBeGreaterThan(0);
    expect(stable!["5xx"]).toBe(0);
    expect(summary.failures).toEqual({ ECONNRESET: summary.failed });
    expect(stable!.sharePercent + canary!.sharePercent).toBeCloseTo(100, 1);
    // The same users in the same order on a second run.
    const again = fakeRun({ rate: 50, users: 40, durationMs: 4000 });
    await again.run;
    expect(again.sent().map((s) => s.user)).toEqual(sent().map((s) => s.user));

    const text = renderTraffic(summary, { rate: 50, path: "/v1/predict", variantHeader: "x-rollout-variant" }, noColor);
    expect(text).toMatch(/^sent 200 requests to \/v1\/predict in [34]s \(50\/s asked\); \d+ answered, by x-rollout-variant:\n/);
    expect(text).toMatch(/\nVARIANT\s+ANSWERS\s+SHARE\s+2XX\s+4XX\s+5XX\s+P50\s+P95\nstable\s+\d+/);
    expect(text).toContain(`no answer: ${summary.failed} (ECONNRESET ×${summary.failed})`);
  });

  it("runs until stopped when told, still at the rate", async () => {
    const { run } = fakeRun({ rate: 10, users: 5, durationMs: null }, 3000);
    const summary = await run;
    expect(summary.sent).toBeGreaterThanOrEqual(30);
    expect(summary.sent).toBeLessThanOrEqual(31);
  });
});

describe("which model is which, and the observed share's window", () => {
  const view = (extra: Record<string, unknown>) => ({
    name: "fraud",
    managed: true,
    canaryPercent: 0,
    shadowPercent: 0,
    variants: {
      stable: { model: "v1", cluster: "stable", upstreams: ["127.0.0.1:9001"] },
      canary: { model: null, cluster: "canary", upstreams: ["127.0.0.1:9002", "127.0.0.1:9003"] },
      text: "stable v1 at 127.0.0.1:9001 · canary 127.0.0.1:9002, 127.0.0.1:9003",
    },
    evaluation: {
      at: "2026-01-01T11:59:00Z",
      windowStartedAt: "2026-01-01T11:56:50Z",
      stage: { index: 1, name: "10%" },
      observedCanaryPercent: 5.21,
      secondsToDecision: 42,
      holds: [],
      gates: [],
    },
    ...extra,
  });

  it("get: the models row, and after a rollback the observed share over the stage's window, before it ended", () => {
    const text = renderRollout(buildPicture(view({ phase: "RolledBack", stage: { index: 1, name: "10%" } }), null, NOW), noColor);
    expect(text).toContain("  models     stable v1 at 127.0.0.1:9001 · canary 127.0.0.1:9002, 127.0.0.1:9003\n");
    expect(text).toContain("  weight     canary 0% set, observed 5.21% over stage 10%'s window (2m10s) before it ended; not measured since · shadow 0%\n");
  });

  it("get: a running stage's share over its window; no decision ETA while paused", () => {
    const running = renderRollout(buildPicture(view({ phase: "Canary", canaryPercent: 10, stage: { index: 1, name: "10%" } }), null, NOW), noColor);
    expect(running).toContain("canary 10% set, observed 5.21% over stage 10%'s window (2m10s) · shadow 0%\n");
    expect(running).toContain("  decision   expected in 42s\n");
    const paused = renderRollout(buildPicture(view({ phase: "Paused", canaryPercent: 10, stage: { index: 1, name: "10%" } }), null, NOW), noColor);
    expect(paused).not.toContain("expected in");
    const held = view({ phase: "Paused", stage: { index: 1, name: "10%" } });
    (held.evaluation as { holds: unknown[] }).holds = [{ text: "error_rate overall: 300 more canary requests" }];
    expect(renderRollout(buildPicture(held, null, NOW), noColor)).toContain("  holds      error_rate overall: 300 more canary requests\n");
  });

  it("list: a models column, stable → canary, short; older controllers' declared versions still shown", () => {
    const older = { name: "old", managed: false, canaryPercent: 5, spec: { models: { stable: "a1", canary: "a2" } } };
    const none = { name: "none", managed: false, canaryPercent: 5 };
    const text = renderList(
      [view({ phase: "Canary" }), older, none].map((v) => buildPicture(v, null, NOW)),
      noColor,
      NOW,
    );
    const lines = text.trimEnd().split("\n");
    expect(lines[0]!.split(/\s{2,}/)).toEqual(["NAME", "PHASE", "STAGE", "SET / OBSERVED", "MODELS (STABLE → CANARY)", "OWNER", "AGE"]);
    expect(lines[1]).toContain("   v1 → 127.0.0.1:9002 +1   ");
    expect(lines[2]).toContain("   a1 → a2   ");
    expect(lines[3]).toMatch(/ {3}- {3}/);
  });
});

describe("values in reasons and gate rows", () => {
  it("show three significant digits, as the dashboard does: an interval near a limit does not read as on it", () => {
    expect([0.0104, 0.243, 0.0512, 0.00512, 0.1, 0.01, 0].map((v) => formatValue(v, "ratio"))).toEqual([
      "1.04%",
      "24.3%",
      "5.12%",
      "0.512%",
      "10%",
      "1%",
      "0%",
    ]);
  });
});

describe("npm start -- --demo-traffic RATE", () => {
  it("takes a bounded rate, and refuses anything else naming the flag", () => {
    expect(planStart(["--demo-traffic", "80"], {})).toMatchObject({ plan: { demoTraffic: 80 } });
    expect(planStart([], {})).not.toHaveProperty("plan.demoTraffic");
    for (const bad of ["0", "-5", "501", "lots"])
      expect(planStart(["--demo-traffic", bad], {})).toEqual({ error: `--demo-traffic: expected requests per second above 0 and at most 500, got '${bad}'` });
    expect(planStart(["--demo-traffic"], {})).toEqual({ error: "--demo-traffic needs a value" });
  });
});
