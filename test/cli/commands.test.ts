// Every `modelroll` command against a real controller in front of a real Envoy with the filter, in its
// table form and its JSON form (which is the API's own JSON).
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, managedSpec, phaseOf, sendMany, startStack, waitFor, type Stack } from "../e2e/harness.ts";
import { cliFor } from "./helpers.ts";

let stack: Stack;
let dir: string;
let ctl: string;
let run: ReturnType<typeof cliFor>;
beforeAll(async () => {
  stack = await startStack({ controller: { tickIntervalMs: 250, upstreamsIntervalMs: 300 } });
  ctl = stack.controller!.url;
  run = cliFor(ctl);
  // The controller starts before Envoy: the views name the upstreams once it has read Envoy's clusters.
  await waitFor("Envoy's clusters read", async () => stack.controller !== null && (await stackUpstreamsKnown()), 10_000, 100);
  dir = await mkdtemp(join(tmpdir(), "modelroll-cli-"));
});
afterAll(async () => {
  await stack?.stop();
  await rm(dir, { recursive: true, force: true });
});

const json = (text: string) => JSON.parse(text);
const stackUpstreamsKnown = async () => {
  await api(ctl, "POST", "/v1/rollouts", { name: "probe", match: { pathPrefix: "/probe" }, stickyKey: { header: "x-user-id" } });
  const known = (await api(ctl, "GET", "/v1/rollouts/probe")).json.variants.canary.upstreams !== null;
  if (known) await api(ctl, "DELETE", "/v1/rollouts/probe");
  return known;
};
/** What the views say the stack's clusters reach. */
const upstreamsText = () => `stable 127.0.0.1:${new URL(stack.stable.url).port} · canary 127.0.0.1:${new URL(stack.canary.url).port}`;
const get = async (name: string) => (await api(ctl, "GET", `/v1/rollouts/${name}`)).json;

/** A managed rollout that holds its first stage (10%) for an hour unless told otherwise; high impact: ends in review. */
const holding = (name: string) =>
  managedSpec(name, "canary error rate above 1%", {
    impact: "high",
    stages: [{ canaryPercent: 10, minDurationSeconds: 3600, minRequests: 10, deadlineSeconds: 7200 }, 100],
    promotion_gates: { error_rate: { maximum: 0.01 }, human_review_score: { minimum_delta: -0.5 } },
  });

async function createHolding(name: string): Promise<void> {
  const file = join(dir, `${name}.yaml`);
  await writeFile(file, stringify(holding(name)));
  expect((await run(["create", "-f", file])).code).toBe(0);
  await waitFor(`${name} in its first stage`, async () => (await phaseOf(ctl, name)) === "Canary", 10_000, 50);
}

describe("manual rollouts", () => {
  it("create (YAML file, JSON on stdin), list, get, weight, shadow, abort, stats and delete, as tables and as JSON", async () => {
    const file = join(dir, "manual.yaml");
    await writeFile(file, "name: manual\nmatch: { pathPrefix: /manual }\nstickyKey: { header: x-user-id }\ncanaryPercent: 5\nshadow: { percent: 10 }\n");
    const created = await run(["create", "-f", file]);
    expect(created).toEqual({ code: 0, stdout: "rollout manual created: manual, canary 5%, shadow 10%, revision 1\n", stderr: "" });
    const again = await run(["create", "-f", file]);
    expect(again).toEqual({ code: 1, stdout: "", stderr: "modelroll: rollout manual: already exists\n" });

    const fromStdin = await run(["create", "-f", "-", "-o", "json"], {
      stdin: JSON.stringify({ name: "second", match: { pathPrefix: "/second" }, stickyKey: { header: "x-user-id" } }),
    });
    expect(fromStdin.code).toBe(0);
    expect(json(fromStdin.stdout)).toEqual(await get("second"));

    const list = await run(["list"]);
    expect(list.code).toBe(0);
    const [header, ...rows] = list.stdout.trimEnd().split("\n");
    expect(header.split(/\s{2,}/)).toEqual(["NAME", "PHASE", "STAGE", "SET / OBSERVED", "MODELS (STABLE → CANARY)", "OWNER", "AGE"]);
    const arrow = `127.0.0.1:${new URL(stack.stable.url).port} → 127.0.0.1:${new URL(stack.canary.url).port}`;
    expect(rows.map((r) => r.split(/\s{2,}/).slice(0, 6))).toEqual([
      ["manual", "● manual", "-", "5% / -", arrow, "-"],
      ["second", "● manual", "-", "0% / -", arrow, "-"],
    ]);
    expect(json((await run(["list", "-o", "json"])).stdout)).toEqual((await api(ctl, "GET", "/v1/rollouts")).json);
    expect((await run(["list", "-o", "name"])).stdout).toBe("manual\nsecond\n");
    expect((await run(["list", "-o", "yaml"])).stdout).toBe(stringify((await api(ctl, "GET", "/v1/rollouts")).json, { lineWidth: 0 }));

    const shown = await run(["get", "manual"]);
    expect(shown.stdout).toBe(
      "manual  ● manual  revision 1\n" +
        `  models     ${upstreamsText()}\n` +
        "  weight     canary 5% set · shadow 10%\n" +
        "  match      /manual, sticky on x-user-id\n",
    );
    expect(json((await run(["get", "manual", "-o", "json"])).stdout)).toEqual(await get("manual"));

    expect((await run(["weight", "manual", "25"])).stdout).toBe("rollout manual: manual, canary 25%, shadow 10%, revision 2\n");
    const stale = await run(["weight", "manual", "30", "--if-revision", "1"]);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toMatch(/^modelroll: rollout manual: changed since you read it: If-Match "1", current revision "2" .*read it again and retry\n$/);
    const fresh = await run(["weight", "manual", "30", "--if-revision", "2", "-o", "json"]);
    expect(json(fresh.stdout)).toMatchObject({ name: "manual", canaryPercent: 30, revision: 3 });
    expect((await run(["shadow", "manual", "50"])).stdout).toBe("rollout manual: manual, canary 30%, shadow 50%, revision 4\n");
    const noShadow = await run(["shadow", "second", "5"]);
    expect(noShadow).toEqual({ code: 1, stdout: "", stderr: "modelroll: rollout second: has no shadow; declare one in the spec to mirror traffic\n" });

    // Real traffic through Envoy, then the stats Envoy counted.
    const replies = await sendMany(`${stack.dataUrl}/manual/p`, 200, (i) => ({ "x-user-id": `u${i}` }), 8);
    const canary = replies.filter((r) => r.variant === "canary").length;
    await waitFor(
      "the stats to count the requests",
      async () =>
        (await api(ctl, "GET", "/v1/rollouts/manual/stats")).json.variants.stable.requests +
          (await api(ctl, "GET", "/v1/rollouts/manual/stats")).json.variants.canary.requests >=
        200,
      10_000,
      100,
    );
    const stats = await run(["stats", "manual"]);
    expect(stats.code).toBe(0);
    const statRows = stats.stdout
      .trimEnd()
      .split("\n")
      .map((l) => l.split(/\s{2,}/));
    expect(statRows[0]).toEqual(["SLICE", "VARIANT", "REQUESTS", "2XX", "4XX", "5XX", "LOCAL", "ERRORS", "P50", "P95"]);
    expect(statRows[1].slice(0, 4)).toEqual(["overall", "stable", String(200 - canary), String(200 - canary)]);
    expect(statRows[2].slice(0, 4)).toEqual(["overall", "canary", String(canary), String(canary)]);
    const statsJson = json((await run(["stats", "manual", "-o", "json"])).stdout);
    expect(statsJson.variants.canary.requests).toBe(canary);
    expect(Object.keys(statsJson)).toEqual(Object.keys((await api(ctl, "GET", "/v1/rollouts/manual/stats")).json));

    expect((await run(["abort", "manual"])).stdout).toBe("rollout manual: manual, canary 0%, shadow 0%, revision 5\n");
    await waitFor(
      "all traffic on stable",
      async () => (await sendMany(`${stack.dataUrl}/manual/p`, 20, (i) => ({ "x-user-id": `u${i}` }), 4)).every((r) => r.variant === "stable"),
      5000,
      20,
    );

    expect(await run(["delete", "manual"])).toEqual({ code: 0, stdout: "rollout manual: deleted (its traffic goes to stable)\n", stderr: "" });
    expect(json((await run(["delete", "second", "-o", "json"])).stdout)).toEqual({ name: "second", deleted: true });
    expect(await run(["get", "manual"])).toEqual({ code: 1, stdout: "", stderr: "modelroll: rollout manual: not found\n" });
    expect((await run(["list"])).stdout).toBe("no rollouts\n");
  });

  it("apply creates a missing rollout, and on an existing one updates it or says the controller cannot", async () => {
    const file = join(dir, "applied.yaml");
    await writeFile(file, "name: applied\nmatch: { pathPrefix: /applied }\nstickyKey: { header: x-user-id }\ncanaryPercent: 1\n");
    expect(await run(["apply", "-f", file])).toEqual({ code: 0, stdout: "rollout applied created: manual, canary 1%, shadow 0%, revision 1\n", stderr: "" });
    const openapi = (await api(ctl, "GET", "/openapi.json")).json;
    const updatable = openapi.paths["/v1/rollouts/{name}"]?.put !== undefined;
    const second = await run(["apply", "-f", file]);
    if (updatable) {
      expect(second.code, second.stderr).toBe(0);
      expect(second.stdout).toMatch(/^rollout applied updated: /);
    } else {
      expect(second.code).toBe(1);
      expect(second.stderr).toBe(
        "modelroll: rollout applied: exists, and this controller does not support updates (PUT /v1/rollouts/applied answered 404); delete and create it, or change it with weight/promote/pause/abort\n",
      );
    }
    await run(["delete", "applied"]);
  });
});

describe("managed rollouts", () => {
  it("get shows the header and the stage tree with the current stage's gates; -o json is the API's view", async () => {
    await createHolding("tree");
    // The stage's window starts once Envoy reports the stage's config version; requests before it count for no stage.
    await waitFor(
      "tree's stage window to start",
      async () => (await api(ctl, "GET", "/v1/rollouts/tree")).json.evaluation?.propagation?.confirmedAt != null,
      20_000,
      50,
    );
    await sendMany(`${stack.dataUrl}/tree/p`, 300, (i) => ({ "x-user-id": `t${i}` }), 8);
    await waitFor("a recorded evaluation of the stage", async () => (await api(ctl, "GET", "/v1/rollouts/tree/report")).json.stages.length > 0, 10_000, 100);
    // And an evaluation whose window holds the traffic (the one recorded first may predate the window's counts).
    await waitFor(
      "an evaluation with the observed share",
      async () => (await api(ctl, "GET", "/v1/rollouts/tree")).json.evaluation?.observedCanaryPercent != null,
      20_000,
      100,
    );
    const { code, stdout } = await run(["get", "tree"]);
    expect(code).toBe(0);
    const lines = stdout.split("\n");
    expect(lines[0]).toMatch(/^tree {2}◑ Canary {2}stage 1\/2 \(10%\) {2}revision \d+$/);
    expect(lines[1]).toBe(`  models     ${upstreamsText()}`);
    // The observed share and the window it was measured over.
    expect(lines[2]).toMatch(/^ {2}weight {5}canary 10% set, observed \d+(\.\d+)?% over stage 10%'s window \((\d+s|\d+m(\d+s)?)\) · shadow 0%$/);
    expect(lines).toContain("  owner      team-fraud");
    expect(lines).toContain("  rollback   canary error rate above 1%");
    // What holds the stage and the gates come from the engine's live evaluation, with the samples each needs.
    expect(stdout).toMatch(/\n {2}holds {6}minimum duration: \d+ of 3600 s; error_rate Inconclusive: /);
    expect(stdout).toContain("\nstages\n├─ ▶ 10%  gates: live evaluation\n");
    expect(stdout).toMatch(/│ {2}[├└]─ [✔?] error_rate +overall +canary [\d.]+% vs stable [\d.]+% +n [\d,]+ \/ [\d,]+ \([\d,]+ needed\) +maximum 1%/);
    expect(stdout).toMatch(/human_review_score +overall/);
    expect(lines.at(-2)).toBe("└─ ○ 100%");
    // The engine ticks every 250 ms and each tick refreshes the live evaluation and forecast, so the CLI's
    // view is compared with the API's read just before and just after it: everything else is the same in all
    // three, and the CLI's evaluation is one the engine made between the two reads.
    const before = await get("tree");
    const shown = json((await run(["get", "tree", "-o", "json"])).stdout);
    const after = await get("tree");
    const { evaluation: _beforeEvaluation, forecast: _beforeForecast, ...beforeRest } = before;
    const { evaluation, forecast, ...shownRest } = shown;
    const { evaluation: _afterEvaluation, forecast: _afterForecast, ...afterRest } = after;
    expect(shownRest).toEqual(beforeRest);
    expect(shownRest).toEqual(afterRest);
    expect(Object.keys(evaluation).sort()).toEqual(Object.keys(before.evaluation).sort());
    expect(Object.keys(forecast).sort()).toEqual(Object.keys(before.forecast).sort());
    expect(evaluation.stage).toEqual(before.evaluation.stage);
    expect(Date.parse(evaluation.at)).toBeGreaterThanOrEqual(Date.parse(before.evaluation.at));
    expect(Date.parse(evaluation.at)).toBeLessThanOrEqual(Date.parse(after.evaluation.at));
    // Made from the same evaluation as one of the API's reads, the CLI shows exactly that read.
    if (evaluation.at === before.evaluation.at) expect(shown).toEqual(before);
    if (evaluation.at === after.evaluation.at) expect(shown).toEqual(after);
    await run(["delete", "tree"]);
  });

  it("measure, pause, resume, promote, review, history and report; a refused command prints the server's reason", async () => {
    await createHolding("flow");
    const measured = await run(["measure", "flow", "--metric", "human_review_score", "--variant", "canary", "0.8", "0.9"]);
    expect(measured).toEqual({ code: 0, stdout: "rollout flow: recorded 2 value(s) of human_review_score for canary\n", stderr: "" });
    expect(json((await run(["measure", "flow", "--metric", "human_review_score", "--variant", "stable", "0.7", "-o", "json"])).stdout)).toEqual({
      rollout: "flow",
      metric: "human_review_score",
      variant: "stable",
      recorded: 1,
    });
    const unknownMetric = await run(["measure", "flow", "--metric", "conversion", "--variant", "canary", "1"]);
    expect(unknownMetric.code).toBe(1);
    expect(unknownMetric.stderr).toMatch(/^modelroll: rollout flow: .*no gate uses the external metric 'conversion'.*\n$/);

    const paused = await run(["pause", "flow", "--reason", "looking at a dashboard"]);
    expect(paused.stdout).toMatch(/^rollout flow: ⏸ Paused, stage 1\/2 \(10%\), canary 10%, shadow 0%, revision \d+\n$/);
    const stale = await run(["resume", "flow", "--if-revision", "1"]);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toMatch(/^modelroll: rollout flow: changed since you read it: If-Match "1"/);
    const revision = (await get("flow")).revision;
    const resumed = json((await run(["resume", "flow", "--if-revision", String(revision), "-o", "json"])).stdout);
    expect(resumed).toMatchObject({ name: "flow", phase: "Canary", revision: revision + 1 });
    const promoted = await run(["promote", "flow"]);
    expect(promoted.stdout).toMatch(/^rollout flow: ◕ Baking, stage 2\/2 \(100%\), canary 100%, shadow 0%, revision \d+\n$/);
    const waiting = json((await run(["promote", "flow", "-o", "json"])).stdout);
    expect(waiting).toMatchObject({ phase: "AwaitingReview", canaryPercent: 100 });
    const refused = await run(["promote", "flow"]);
    expect(refused).toEqual({ code: 1, stdout: "", stderr: "modelroll: rollout flow: cannot promote: it is waiting for a review (post one)\n" });
    expect((await run(["review", "flow", "--approve", "--reject"])).code).toBe(3);
    const reviewed = await run(["review", "flow", "--approve", "--reason", "spot checks fine"]);
    expect(reviewed.stdout).toMatch(/^rollout flow: ✔ Succeeded, stage 2\/2 \(100%\), canary 100%/);
    expect((await run(["review", "flow", "--reject"])).stderr).toBe(
      "modelroll: rollout flow: cannot review: it has Succeeded: finalize it (stable made to serve the new model), or roll it back / undo it to go back to the old stable\n",
    );

    const history = await run(["history", "flow"]);
    const rows = history.stdout.trimEnd().split("\n");
    expect(rows[0].split(/\s{2,}/)).toEqual(["AT", "DECISION", "PHASE", "STAGE", "BY", "REASON"]);
    const kinds = rows.slice(1).map((r) => r.split(/\s{2,}/)[1]);
    expect(kinds.filter((k) => k !== "held")).toEqual(["started", "paused", "resumed", "promoted", "promoted", "reviewed"]);
    expect(history.stdout).toContain("paused by api: looking at a dashboard");
    expect(json((await run(["history", "flow", "-o", "json"])).stdout)).toEqual((await api(ctl, "GET", "/v1/rollouts/flow/history")).json);

    const markdown = await run(["report", "flow"]);
    expect(markdown.stdout).toMatch(/^# Rollout flow: succeeded\n/);
    expect(markdown.stdout).toContain("| reviewed |");
    const reportJson = json((await run(["report", "flow", "--format", "json"])).stdout);
    expect(reportJson).toMatchObject({ rollout: "flow", outcome: "succeeded", owner: "team-fraud" });
    expect(json((await run(["report", "flow", "-o", "json"])).stdout)).toEqual(reportJson);

    const done = await run(["get", "flow"]);
    expect(done.stdout).toContain("\nstages\n├─ ✔ 10%\n└─ ✔ 100%\n");
    expect(done.stdout).toContain("\n  why        approved by api: spot checks fine");
    await run(["delete", "flow"]);
  });

  it("promote --full goes to the end (here: the review), undo goes back to stable; fail and abort end a rollout", async () => {
    await createHolding("full");
    const full = await run(["promote", "full", "--full"]);
    expect(
      full.stdout
        .trimEnd()
        .split("\n")
        .map((l) => l.replace(/, revision \d+$/, "")),
    ).toEqual([
      "rollout full: ◕ Baking, stage 2/2 (100%), canary 100%, shadow 0%",
      "rollout full: ⌛ AwaitingReview, stage 2/2 (100%), canary 100%, shadow 0%",
    ]);
    const undone = await run(["undo", "full", "--reason", "latency looks off"]);
    expect(undone.stdout).toMatch(/^rollout full: ↩ RolledBack, stage 2\/2 \(100%\), canary 0%/);

    await createHolding("failing");
    expect((await run(["fail", "failing", "-o", "json"])).stdout).toMatch(/"phase": "Failed"/);
    await createHolding("aborting");
    expect((await run(["rollback", "aborting"])).stdout).toMatch(/^rollout aborting: ↩ RolledBack, stage 1\/2 \(10%\), canary 0%/);
    const weight = await run(["weight", "aborting", "5"]);
    expect(weight.code).toBe(1);
    expect(weight.stderr).toMatch(/^modelroll: rollout aborting: managed by the engine, which sets its weight/);
    for (const name of ["full", "failing", "aborting"]) await run(["delete", name]);
  });
});
