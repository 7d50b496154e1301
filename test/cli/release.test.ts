// The whole release from the CLI, against a real controller in front of a real Envoy with the filter: `traffic`
// sends what the examples need and counts what each variant answered (the same numbers Envoy counted), `get`
// and `list` say which model is which (the versions declared, the upstreams Envoy reaches), and `finalize
// --wait` follows the verification: refused while stable still answers the old version, Finalized once it
// answers the new one.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startModelServer } from "../../controller/src/demo/model-server.ts";
import { api, freePort, managedSpec, phaseOf, startStack, waitFor, type Stack } from "../e2e/harness.ts";
import { cliFor } from "./helpers.ts";

let stack: Stack;
let ctl: string;
let run: ReturnType<typeof cliFor>;
beforeAll(async () => {
  stack = await startStack({ controller: { tickIntervalMs: 250, upstreamsIntervalMs: 300 } });
  ctl = stack.controller!.url;
  run = cliFor(ctl, { MODELROLL_DATA_URL: stack.dataUrl });
});
afterAll(async () => {
  await stack?.stop();
});

const portOf = (url: string) => new URL(url).port;

describe("modelroll traffic", () => {
  it("sends rate × duration requests from many users and reports per variant what Envoy counted", async () => {
    expect(
      (await api(ctl, "POST", "/v1/rollouts", { name: "split", match: { pathPrefix: "/split" }, stickyKey: { header: "x-user-id" }, canaryPercent: 30 }))
        .status,
    ).toBe(201);
    // The filter has the rollout once a probe comes back with a variant header.
    await waitFor(
      "the rollout in the filter",
      async () => (await fetch(`${stack.dataUrl}/split/predict`, { method: "POST", body: "{}" })).headers.get("x-rollout-variant") !== null,
      10_000,
      50,
    );
    const before = (await api(ctl, "GET", "/v1/rollouts/split/stats")).json;
    const result = await run(["traffic", "--path", "/split/predict", "--rate", "100", "--duration", "2s", "--users", "500", "-o", "json"]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const summary = JSON.parse(result.stdout);
    expect(summary).toMatchObject({ sent: 200, answered: 200, failed: 0, skipped: 0 });
    expect(summary.variants.stable.requests).toBeGreaterThan(0);
    expect(summary.variants.canary.requests).toBeGreaterThan(0);
    expect(summary.variants.stable["2xx"] + summary.variants.canary["2xx"]).toBe(200);
    // What the answers' header said is what Envoy counted for each variant.
    await waitFor(
      "Envoy's counts to include the run",
      async () => {
        const after = (await api(ctl, "GET", "/v1/rollouts/split/stats")).json;
        return ["stable", "canary"].every((v) => after.variants[v].requests - (before.variants[v]?.requests ?? 0) === summary.variants[v].requests);
      },
      10_000,
      100,
    );

    const table = await run(["traffic", "--path", "/split/predict", "--rate", "50", "--duration", "1s", "-H", "x-tenant-tier: pro"]);
    expect(table.code).toBe(0);
    expect(table.stdout).toContain(`sending 50 requests/s to ${stack.dataUrl}/split/predict from 1000 users (x-user-id) for 1 s\n`);
    expect(table.stdout).toMatch(/sent 50 requests to \/split\/predict in 1s \(50\/s asked\); 50 answered, by x-rollout-variant:\n/);
    expect(table.stdout).toMatch(/\nstable +\d+ +\d+(\.\d+)?% +\d+ +0 +0 +\d+(\.\d)? ms/);

    // Nothing listening: every request fails, exit 1, and the reason is named.
    const nowhere = await run(["traffic", "--data-url", `http://127.0.0.1:${await freePort()}`, "--rate", "20", "--duration", "1s"]);
    expect(nowhere.code).toBe(1);
    expect(nowhere.stdout).toContain("no answer: 20 (ECONNREFUSED ×20)");
  });
});

describe("a release from the CLI", () => {
  it("shows which model is which, then finalize --wait: not verified while stable answers v1, Finalized once it answers v2", async () => {
    const spec = managedSpec("fraud", "canary error rate above 1%", {
      models: { stable: "v1", canary: "v2", versionField: "model_version" },
      stages: [{ canaryPercent: 10, minDurationSeconds: 3600, minRequests: 10, deadlineSeconds: 7200 }, 100],
      promotion_gates: { error_rate: { maximum: 0.01 } },
      finalize: { verifyPercent: 50, verifyAnswers: 5, deadlineSeconds: 3 },
    });
    expect((await api(ctl, "POST", "/v1/rollouts", spec)).status).toBe(201);
    await waitFor("fraud: Canary", async () => (await phaseOf(ctl, "fraud")) === "Canary", 10_000, 50);

    // Which model is which: the declared versions and the hosts Envoy's clusters reach.
    const models = `stable v1 at 127.0.0.1:${portOf(stack.stable.url)} · canary v2 at 127.0.0.1:${portOf(stack.canary.url)}`;
    await waitFor("the upstreams read from Envoy", async () => (await api(ctl, "GET", "/v1/rollouts/fraud")).json.variants.text === models, 10_000, 100);
    const got = await run(["get", "fraud"]);
    expect(got.stdout).toContain(`  models     ${models}\n`);
    const list = await run(["list"]);
    expect(list.stdout.split("\n").find((l) => l.startsWith("fraud "))).toContain(" v1 → v2 ");

    expect((await run(["promote", "fraud", "--full"])).code).toBe(0);
    expect(await phaseOf(ctl, "fraud")).toBe("Succeeded");

    // Stable still answers v1: verification cannot pass, and after its deadline the rollout is back to Succeeded.
    const stableTraffic = run(["traffic", "--path", "/fraud/predict", "--rate", "50", "--duration", "6s", "-o", "json"]);
    const refused = await run(["finalize", "fraud", "--wait", "--reason", "v2 deployed?"]);
    expect(refused.code, refused.stderr).toBe(1);
    expect(refused.stdout).toMatch(/^rollout fraud finalize: ⇄ Finalizing/);
    expect(refused.stderr).toMatch(/^modelroll: rollout fraud: not finalized: /);
    expect(await phaseOf(ctl, "fraud")).toBe("Succeeded");
    expect((await stableTraffic).code).toBe(0);

    // The stable deployment repointed to v2 (same address): verified, Finalized, archived.
    const port = Number(portOf(stack.stable.url));
    await stack.stable.close();
    stack.stable = await startModelServer({ version: "v2", port });
    const moreTraffic = run(["traffic", "--path", "/fraud/predict", "--rate", "50", "--duration", "4s", "-o", "json"]);
    const finalized = await run(["finalize", "fraud", "--wait", "-o", "json"]);
    expect(finalized.code, finalized.stderr).toBe(0);
    expect(JSON.parse(finalized.stdout)).toMatchObject({ name: "fraud", phase: "Finalized", archived: expect.stringMatching(/^archived as \d+$/) });
    expect((await moreTraffic).code).toBe(0);
    const archived = (await api(ctl, "GET", "/v1/rollouts?archived=true&name=fraud")).json.rollouts;
    expect(archived.at(-1).phase).toBe("Finalized");

    // Nothing left to finalize: the controller's reason, exit 1.
    const again = await run(["finalize", "fraud"]);
    expect(again).toEqual({ code: 1, stdout: "", stderr: "modelroll: rollout fraud: not found\n" });
  });
});
