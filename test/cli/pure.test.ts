// The CLI's pure layer: argv -> plan, API JSON -> text (tolerant of fields older or newer controllers lack
// or add), the event-stream parser, and the one-line errors.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { describeFailure } from "../../controller/src/cli/modelroll/client.ts";
import { paint } from "../../controller/src/cli/modelroll/format.ts";
import { buildPicture } from "../../controller/src/cli/modelroll/picture.ts";
import { parseDuration } from "../../controller/src/cli/modelroll/plan.ts";
import { planCommand } from "../../controller/src/cli/modelroll/program.ts";
import { renderHistory, renderStats } from "../../controller/src/cli/modelroll/render-misc.ts";
import { renderList, renderRollout, summaryLine } from "../../controller/src/cli/modelroll/render-rollout.ts";
import { SseParser } from "../../controller/src/cli/modelroll/sse-client.ts";

const plan = (argv: string[], env: Record<string, string> = {}, isTTY = false) => planCommand(argv, { env, isTTY, version: "1.2.3" });
const noColor = paint(false);
const NOW = Date.parse("2026-01-01T12:00:00Z");

describe("planCommand", () => {
  it("turns each command into its request, with If-Match only when --if-revision is given", () => {
    expect(plan(["weight", "fraud", "12.5"])).toEqual({
      plan: {
        globals: { server: "http://127.0.0.1:8080", token: null, color: false, output: "table" },
        command: {
          kind: "action",
          action: "weight",
          name: "fraud",
          request: { method: "PUT", path: "/v1/rollouts/fraud/weight", body: { canaryPercent: 12.5 }, headers: {} },
        },
      },
    });
    const abort = plan(["abort", "fraud", "--reason", "p95 up", "--if-revision", "7", "-o", "json"]);
    expect(abort).toMatchObject({
      plan: {
        globals: { output: "json" },
        command: { request: { method: "POST", path: "/v1/rollouts/fraud/rollback", body: { reason: "p95 up" }, headers: { "if-match": '"7"' } } },
      },
    });
    expect(plan(["accept-upstreams", "fraud", "--reason", "new build"])).toMatchObject({
      plan: { command: { request: { method: "POST", path: "/v1/rollouts/fraud/accept-upstreams", body: { reason: "new build" } } } },
    });
    expect(plan(["review", "fraud", "--reject", "--reason", "bad answers"])).toMatchObject({
      plan: { command: { request: { path: "/v1/rollouts/fraud/review", body: { approved: false, reason: "bad answers" } } } },
    });
    expect(plan(["measure", "fraud", "--metric", "human_review_score", "--variant", "canary", "0.5", "-1e-3"])).toMatchObject({
      plan: { command: { kind: "measure", request: { body: { metric: "human_review_score", variant: "canary", values: [0.5, -0.001] } } } },
    });
    expect(plan(["promote", "fraud", "--full"])).toMatchObject({ plan: { command: { kind: "promote-full", name: "fraud", reason: null, ifRevision: null } } });
    expect(plan(["delete", "a/b"])).toMatchObject({ plan: { command: { request: { method: "DELETE", path: "/v1/rollouts/a%2Fb" } } } });
    expect(plan(["status", "fraud"])).toMatchObject({ plan: { command: { kind: "status", timeoutMs: 30 * 60_000 } } });
  });

  it("takes the server and token from flags, then the environment, then the default; colors only on a terminal", () => {
    const env = { MODELROLL_SERVER: "http://ctl:9000/", MODELROLL_TOKEN: "from-env" };
    expect(plan(["list"], env)).toMatchObject({ plan: { globals: { server: "http://ctl:9000", token: "from-env", color: false } } });
    expect(plan(["--server", "https://x.example", "--token", "flag", "list"], env)).toMatchObject({
      plan: { globals: { server: "https://x.example", token: "flag" } },
    });
    // Global options after the command work too.
    expect(plan(["list", "--server", "http://late:1"])).toMatchObject({ plan: { globals: { server: "http://late:1" } } });
    expect(plan(["list"], {}, true)).toMatchObject({ plan: { globals: { color: true } } });
    expect(plan(["--no-color", "list"], {}, true)).toMatchObject({ plan: { globals: { color: false } } });
    expect(plan(["list"], { NO_COLOR: "1" }, true)).toMatchObject({ plan: { globals: { color: false } } });
  });

  it("answers --help and --version with text, and argument errors with one usage line", () => {
    expect(plan(["--version"])).toEqual({ text: "1.2.3\n" });
    expect("text" in plan(["get", "--help"])).toBe(true);
    expect(plan(["review", "x"])).toEqual({ usage: "review: give exactly one of --approve and --reject" });
    expect(plan(["shadow", "x", "-1"])).toEqual({ usage: "shadow: expected a percent 0-100 with at most two decimals, got '-1'" });
    expect(plan(["weight", "x", "100.001"])).toEqual({ usage: "weight: expected a percent 0-100 with at most two decimals, got '100.001'" });
  });

  it("reads durations as CI configs write them", () => {
    expect([parseDuration("30m"), parseDuration("90s"), parseDuration("1h30m"), parseDuration("1500ms"), parseDuration("45"), parseDuration("2m30s")]).toEqual([
      1_800_000, 90_000, 5_400_000, 1500, 45_000, 150_000,
    ]);
    expect([parseDuration(""), parseDuration("soon"), parseDuration("5x"), parseDuration("m")]).toEqual([null, null, null, null]);
  });
});

describe("SseParser", () => {
  const stream = 'retry: 1500\n\n: heartbeat\n\nevent: rollout\nid: 1.2.0\ndata: {"a":\ndata: 1}\n\nevent: deleted\r\ndata: {"name":"x"}\r\n\r\n';

  it("parses events, ids, retry and comments whatever the chunking", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 8 }), (cuts) => {
        const parser = new SseParser();
        const points = [...new Set(cuts)].sort((a, b) => a - b);
        const chunks = [0, ...points].map((start, i) => stream.slice(start, points[i] ?? stream.length));
        const events = chunks.flatMap((c) => parser.push(c));
        expect(events).toEqual([
          { event: "rollout", id: "1.2.0", data: '{"a":\n1}' },
          { event: "deleted", id: "1.2.0", data: '{"name":"x"}' },
        ]);
        expect(parser.retryMs).toBe(1500);
        expect(parser.lastId).toBe("1.2.0");
      }),
    );
  });
});

describe("the rollout picture", () => {
  const today = {
    name: "fraud",
    managed: true,
    phase: "Canary",
    revision: 4,
    canaryPercent: 5,
    shadowPercent: 0,
    stage: { index: 1, name: "5%" },
    spec: { name: "fraud", match: { pathPrefix: "/v1/predict" }, stickyKey: { header: "x-user-id" } },
    createdAt: "2026-01-01T11:00:00Z",
  };
  const report = {
    owner: "team-fraud",
    rollbackCondition: "errors above 1%",
    why: "stage 5% holding: error_rate Inconclusive",
    timeline: [
      { kind: "started", stage: "1%", reason: "rollout started with stage 1%" },
      { kind: "advanced", stage: "1%", reason: "stage 1% passed" },
      { kind: "held", stage: "5%", reason: "stage 5% holding: error_rate Inconclusive" },
    ],
    stages: [
      {
        stage: "5%",
        gates: [
          {
            gate: "error_rate",
            segment: "overall",
            status: "Passed",
            stable: 0.004,
            candidate: 0.005,
            threshold: "maximum 0.01",
            unit: "ratio",
            samples: { stable: 9500, candidate: 500 },
          },
          {
            gate: "error_rate",
            segment: "tier=free",
            status: "Passed",
            stable: 0.004,
            candidate: 0.005,
            threshold: "maximum 0.01",
            unit: "ratio",
            samples: { stable: 100, candidate: 5 },
          },
          {
            gate: "error_rate",
            segment: "tier=pro",
            status: "Inconclusive",
            stable: 0.004,
            candidate: 0.02,
            threshold: "maximum 0.01",
            unit: "ratio",
            samples: { stable: 100, candidate: 5 },
          },
          {
            gate: "latency_p95_ms",
            segment: "overall",
            status: "Failed",
            stable: 10,
            candidate: 30,
            threshold: "maxRatio 1.1",
            unit: "ms",
            samples: { stable: 9500, candidate: 500 },
          },
        ],
      },
    ],
  };

  it("shows what today's controller gives: view + report, gates worst first, stages seen so far", () => {
    const text = renderRollout(buildPicture(today, report, NOW), noColor);
    expect(text).toBe(
      [
        "fraud  ◑ Canary  stage 2 (5%)  revision 4",
        "  weight     canary 5% set, observed 5% · shadow 0%",
        "  match      /v1/predict, sticky on x-user-id",
        "  owner      team-fraud",
        "  rollback   errors above 1%",
        "  holds      stage 5% holding: error_rate Inconclusive",
        "",
        "stages",
        "├─ ✔ 1%",
        "├─ ▶ 5%  gates: last decision",
        "│  ├─ ✘ latency_p95_ms   overall    canary 30 ms vs stable 10 ms   n 500 / 9,500   maxRatio ×1.1",
        "│  ├─ ? error_rate       tier=pro   canary 2% vs stable 0.4%       n 5 / 100       maximum 1%",
        "│  └─ ✔ error_rate       overall    canary 0.5% vs stable 0.4%     n 500 / 9,500   maximum 1%",
        "│     + 1 more error_rate segment slice passed",
        "└─ … later stages (this controller does not return the plan)",
        "",
      ].join("\n"),
    );
  });

  it("uses richer fields when a controller has them: the plan, a live evaluation with needs and ETA, pending, archive", () => {
    const richer = {
      ...today,
      observedCanaryPercent: 4.87,
      spec: {
        ...today.spec,
        owner: "team-risk",
        rollbackCondition: "p95 up 10%",
        stages: ["shadow", 1, { canaryPercent: 5 }, { name: "full", canaryPercent: 100 }],
      },
      stage: { index: 2, name: "5%" },
      evaluation: {
        measurements: [
          {
            gate: "error_rate",
            segment: null,
            status: "Inconclusive",
            stableValue: 0.001,
            candidateValue: 0.002,
            unit: "ratio",
            threshold: { kind: "maximum", value: 0.01 },
            sampleSizes: { stable: 3000, candidate: 120 },
            needed: { stable: 3000, candidate: 400 },
            etaSeconds: 180,
            reason: "not enough data yet",
            severity: 0,
          },
          {
            gate: "error_rate",
            segment: { dimension: "tier", value: "pro" },
            status: "Error",
            stableValue: null,
            candidateValue: null,
            unit: "ratio",
            sampleSizes: { stable: 0, candidate: 0 },
            reason: "no reading",
          },
        ],
        blocking: ["error_rate overall: 280 more canary requests"],
        etaSeconds: 180,
      },
      pending: { step: "finalize", description: "make stable serve v2, then finalize" },
      archivedAt: "2026-01-01T13:00:00Z",
    };
    const text = renderRollout(buildPicture(richer, null, NOW), noColor);
    expect(text).toContain("fraud  ◑ Canary  stage 3/4 (5%)  revision 4\n");
    expect(text).toContain("  weight     canary 5% set, observed 4.87% · shadow 0%\n");
    expect(text).toContain("  owner      team-risk\n  rollback   p95 up 10%\n");
    expect(text).toContain("  holds      error_rate overall: 280 more canary requests (decision expected in 3m)\n");
    expect(text).toContain("  pending    make stable serve v2, then finalize\n  archived   2026-01-01T13:00:00Z\n");
    expect(text).toContain("├─ ✔ shadow\n├─ ✔ 1%\n├─ ▶ 5%  gates: live evaluation\n");
    expect(text).toContain("│  ├─ ⚠ error_rate   tier=pro   canary n/a vs stable n/a     n 0 / 0\n│  │  no reading\n");
    expect(text).toContain("│  └─ ? error_rate   overall    canary 0.2% vs stable 0.1%   n 120 / 3,000 of 400 / 3,000 needed   maximum 1%, ETA 3m\n");
    expect(text).toContain("│     not enough data yet\n");
    expect(text.trimEnd().endsWith("└─ ○ full")).toBe(true);
    expect(text).not.toContain("later stages");
    // What the spec leaves unprotected is printed after pending, one warning per line.
    const warned = renderRollout(buildPicture({ ...richer, warnings: [{ path: "/promotion_gates", reason: "no gates: ..." }] }, null, NOW), noColor);
    expect(warned).toContain("  pending    make stable serve v2, then finalize\n  warning    /promotion_gates no gates: ...\n  archived");
  });

  it("never throws on any JSON, and says less when fields are missing", () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.jsonValue(), (view, rep) => {
        const picture = buildPicture(view, rep, NOW);
        renderRollout(picture, noColor);
        summaryLine(picture, noColor);
        renderList([picture], noColor, NOW);
        renderHistory(view, noColor);
        renderStats(view, noColor);
      }),
      { numRuns: 300 },
    );
    expect(renderRollout(buildPicture({ name: "x" }, null, NOW), noColor)).toBe("x  ● manual\n  weight     canary - set · shadow -\n");
  });
});

describe("describeFailure", () => {
  const ctx = { server: "http://ctl", hadToken: false };
  it("keeps the server's words for 4xx, names 401/403 and 5xx, and picks exit codes", () => {
    expect(describeFailure(400, { error: "rollout x: invalid request body: /name is required", details: [] }, "", ctx)).toMatchObject({
      message: "rollout x: invalid request body: /name is required",
      exitCode: 1,
    });
    expect(describeFailure(412, { error: "rollout x: changed since you read it" }, "", ctx)).toMatchObject({ exitCode: 1 });
    expect(describeFailure(401, {}, "", ctx)).toMatchObject({
      message: "unauthorized: set MODELROLL_TOKEN (the controller requires a bearer token)",
      exitCode: 3,
    });
    expect(describeFailure(502, undefined, "<html>bad gateway</html>", ctx)).toMatchObject({
      message: "controller error (502): <html>bad gateway</html>",
      exitCode: 1,
    });
  });
});
