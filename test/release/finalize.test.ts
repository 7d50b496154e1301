// After Succeeded, through the API with simulated traffic: finalize (verified by the versions stable answers),
// the model identity check, rollback and undo back to the old stable, the archive, the path held until
// finalized, and the finalize webhook.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { BuildAppOptions } from "../../controller/src/app.ts";
import { createRollout } from "../controller/helpers.ts";
import { fingerprint } from "../../controller/src/secrets.ts";
import { Answers } from "./answers.ts";
import { harness, managedSpec, type Harness } from "./harness.ts";

const MODELS = { stable: "v1", canary: "v2", versionField: "model_version" };
const post = (h: Harness, url: string, payload?: unknown, actor = "alice") =>
  h.app.inject({ method: "POST", url, ...(payload === undefined ? {} : { payload: payload as object }), headers: { "x-actor": actor } });

async function until(h: Harness, phase: string, maxRounds = 200): Promise<Record<string, any>> {
  for (let i = 0; i < maxRounds; i++) {
    const view = await h.view();
    if (view.phase === phase) return view;
    await h.round();
  }
  throw new Error(`never reached ${phase}: ${JSON.stringify(await h.view()).slice(0, 400)}`);
}

const kinds = async (h: Harness, url = "/v1/rollouts/fraud-model/history") =>
  ((await h.app.inject({ url })).json().decisions as Array<{ kind: string }>).map((d) => d.kind).filter((k) => k !== "held");

async function succeeded(extra: Record<string, unknown> = {}, app: Partial<BuildAppOptions> = {}): Promise<{ h: Harness; answers: Answers }> {
  const h = await harness({ app });
  const answers = new Answers().attach(h);
  await createRollout(h.app, managedSpec({ models: MODELS, finalize: { verifyAnswers: 50, deadlineSeconds: 120 }, ...extra }));
  await until(h, "Succeeded");
  return { h, answers };
}

describe("finalize", () => {
  it("verifies that stable answers the new version, then routes everything to stable and archives the rollout", async () => {
    const { h, answers } = await succeeded();
    const before = await h.view();
    expect(before).toMatchObject({ phase: "Succeeded", canaryPercent: 100 });
    expect(before.pending).toMatch(
      /^finalize: make stable serve v2, then POST \/v1\/rollouts\/fraud-model\/finalize: the controller then checks that stable answers v2 \(body field model_version\)/,
    );
    expect(before.pending).toContain("To go back to the old stable (v1): POST /v1/rollouts/fraud-model/rollback");

    const asked = await post(h, "/v1/rollouts/fraud-model/finalize", { reason: "stable redeployed with v2" });
    expect(asked.statusCode, asked.body).toBe(200);
    expect(asked.json()).toMatchObject({ phase: "Finalizing", canaryPercent: 95 });
    expect((await h.served()).canaryPercent).toBe(95);
    expect(asked.json().pending).toMatch(/^finalize: verifying that stable answers v2: 0 of 50 answers in a row so far/);

    // Stable still answers v1: no verification, however long, and the wait is recorded once.
    for (let i = 0; i < 4; i++) await h.round();
    expect((await h.view()).phase).toBe("Finalizing");
    expect((await kinds(h)).filter((k) => k === "finalizeWaiting")).toHaveLength(1);

    // The stable deployment now serves v2.
    answers.serves.stable = "canary";
    await h.round();
    await h.round();
    await h.round();
    const gone = await h.app.inject({ url: "/v1/rollouts/fraud-model" });
    expect(gone.statusCode).toBe(404);
    const config = (await h.app.inject({ url: "/v1/filter-config" })).json();
    expect(config.rollouts).toEqual([]);

    const archived = (await h.app.inject({ url: "/v1/rollouts?archived=true" })).json().rollouts;
    expect(archived).toHaveLength(1);
    expect(archived[0]).toMatchObject({ name: "fraud-model", phase: "Finalized", canaryPercent: 0, archived: { id: 1 } });
    expect(archived[0].archived.reason).toMatch(/^finalized: stable answered v2 \d+ times in a row/);
    const report = (await h.app.inject({ url: "/v1/archive/1/report" })).json();
    expect(report).toMatchObject({ outcome: "finalized", models: { stable: "v1", canary: "v2" }, archived: { id: 1 } });
    expect(
      report.timeline
        .map((t: { kind: string }) => t.kind)
        .filter((k: string) => k !== "held")
        .slice(-4),
    ).toEqual(["succeeded", "finalizeRequested", "finalizeWaiting", "finalized"]);
    const missing = (await h.app.inject({ url: "/v1/rollouts/fraud-model/report" })).json();
    expect(missing.error).toMatch(/^rollout fraud-model: not found; archived as 1 \(finalized: .*\): GET \/v1\/archive\/1\/report/);

    // The path and the name are free; a new rollout of the same name starts from 0% with a history of its own.
    const next = await createRollout(h.app, managedSpec({ models: { stable: "v2", canary: "v3", versionField: "model_version" } }));
    expect(next).toMatchObject({ phase: "Pending", canaryPercent: 0 });
    expect((await h.app.inject({ url: "/v1/rollouts/fraud-model/history" })).json().decisions).toEqual([]);
    expect((await h.app.inject({ url: "/v1/archive/1/history" })).json().decisions.length).toBeGreaterThan(5);
  });

  it("gives up at the deadline and goes back to 100% canary, saying what stable answered", async () => {
    const { h } = await succeeded();
    await post(h, "/v1/rollouts/fraud-model/finalize");
    const view = await until(h, "Succeeded", 30);
    expect(view.canaryPercent).toBe(100);
    expect((await h.served()).canaryPercent).toBe(100);
    expect(view.pending).toMatch(/^finalize not verified within 120 s: stable answered v2 0 times and another version \d+ times since alice asked/);
    expect((await kinds(h)).at(-1)).toBe("finalizeNotVerified");
  });

  it("without a version source it is taken on the operator's word, and the record says it was not verified", async () => {
    const h = await harness();
    await createRollout(h.app, managedSpec({ models: { stable: "v1", canary: "v2" } }));
    await until(h, "Succeeded");
    expect((await h.view()).pending).toContain("no version source is declared");
    const done = await post(h, "/v1/rollouts/fraud-model/finalize");
    expect(done.statusCode, done.body).toBe(200);
    expect(done.json()).toMatchObject({ phase: "Finalized", canaryPercent: 0 });
    const entry = (await h.app.inject({ url: "/v1/rollouts?archived=true" })).json().rollouts[0];
    expect(entry.archived.reason).toMatch(/^finalized by alice: not verified \(the spec's models give no versionField or versionHeader/);
  });

  it("is refused before Succeeded and while finalizing, and {verify: false} skips the verification", async () => {
    const { h } = await succeeded();
    await post(h, "/v1/rollouts/fraud-model/finalize");
    const again = await post(h, "/v1/rollouts/fraud-model/finalize");
    expect(again.statusCode).toBe(409);
    expect(again.json().error).toMatch(/^rollout fraud-model: cannot finalize: it is already finalizing .* send \{"verify": false\}/);
    const forced = await post(h, "/v1/rollouts/fraud-model/finalize", { verify: false, reason: "checked by hand" });
    expect(forced.json()).toMatchObject({ phase: "Finalized" });

    const early = await harness();
    await createRollout(early.app, managedSpec());
    const refused = await post(early, "/v1/rollouts/fraud-model/finalize");
    expect(refused.statusCode).toBe(409);
    expect(refused.json().error).toBe("rollout fraud-model: cannot finalize: finalize is for a rollout that has Succeeded; it is Pending");
  });
});

describe("after Succeeded, before finalize", () => {
  it("holds the path: a new rollout for it is refused, naming the unfinalized one and what to do", async () => {
    const { h } = await succeeded();
    const refused = await h.app.inject({ method: "POST", url: "/v1/rollouts", payload: managedSpec({ name: "fraud-model-v3" }) });
    expect(refused.statusCode).toBe(409);
    expect(refused.json().error).toBe(
      "rollout fraud-model-v3: pathPrefix /v1/predict is held by rollout fraud-model, which succeeded but is not finalized (its canary v2 answers 100% of the traffic; phase Succeeded): finalize it (POST /v1/rollouts/fraud-model/finalize) once stable serves v2, or roll it back (POST /v1/rollouts/fraud-model/rollback) and delete it; then create this one, which starts from 0%",
    );
  });

  it.each(["rollback", "undo"])("%s goes back to the old stable, with the reason; a second rollback changes nothing", async (command) => {
    const { h } = await succeeded();
    const back = await post(h, `/v1/rollouts/fraud-model/${command}`, { reason: "support tickets" });
    expect(back.statusCode, back.body).toBe(200);
    expect(back.json()).toMatchObject({ phase: "RolledBack", canaryPercent: 0 });
    expect((await h.served()).canaryPercent).toBe(0);
    const verb = command === "rollback" ? "rolled back" : "undone";
    expect(back.json().lastRollback).toMatchObject({
      by: "alice",
      reason: `${verb} by alice after the release succeeded: back to the old stable (v1): support tickets`,
    });
    const again = await post(h, "/v1/rollouts/fraud-model/rollback", { reason: "again" });
    expect(again.statusCode).toBe(200);
    expect(again.json().revision).toBe(back.json().revision);
    expect((await kinds(h)).filter((k) => k === "rolledBack" || k === "undone")).toHaveLength(1);
  });
});

describe("model identity", () => {
  it("a canary answering another model than declared is rolled back, whatever the gates say", async () => {
    const h = await harness();
    const answers = new Answers().attach(h);
    await createRollout(h.app, managedSpec({ models: MODELS }));
    await until(h, "Canary");
    await h.round();
    answers.serves.canary = "other";
    await h.round();
    const view = await h.view();
    expect(view).toMatchObject({ phase: "RolledBack", canaryPercent: 0 });
    const last = (await h.app.inject({ url: "/v1/rollouts/fraud-model/history" })).json().decisions.at(-1);
    expect(last.kind).toBe("rolledBack");
    expect(last.reason).toMatch(
      /^the canary answered another model than the declared v2: \d+ answers stating a version that is neither \(body field model_version\)/,
    );
  });

  it("after Succeeded, a canary upstream now serving another model gets no more traffic; finalize then verifies with all traffic on stable", async () => {
    const { h, answers } = await succeeded();
    answers.serves = { stable: "canary", canary: "other" };
    await h.round();
    const view = await h.view();
    expect(view).toMatchObject({ phase: "Succeeded", canaryPercent: 0 });
    expect((await h.served()).canaryPercent).toBe(0);
    // At 100% canary stable answers nothing, so it cannot be seen serving v2 yet.
    expect(view.pending).toMatch(
      /^canary traffic withdrawn: the canary answered another model than the declared v2: \d+ answers stating a version that is neither \(body field model_version\); .* all traffic back on stable\. If stable now serves v2, POST finalize; otherwise roll back\./,
    );
    expect(await kinds(h)).toContain("canaryWithdrawn");

    const asked = await post(h, "/v1/rollouts/fraud-model/finalize");
    expect(asked.json()).toMatchObject({ phase: "Finalizing", canaryPercent: 0 });
    await h.round();
    await h.round();
    expect((await h.app.inject({ url: "/v1/rollouts/fraud-model" })).statusCode).toBe(404);
    expect((await h.app.inject({ url: "/v1/archive/1" })).json()).toMatchObject({ phase: "Finalized", canaryPercent: 0 });
  });

  it("refuses models that cannot tell the two apart, or with two version sources, with pointers", async () => {
    const h = await harness();
    const response = await h.app.inject({
      method: "POST",
      url: "/v1/rollouts",
      payload: managedSpec({ models: { stable: "v1", canary: "v1", versionField: "model_version", versionHeader: "x-model-version" } }),
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().details).toEqual([
      { path: "/models/canary", reason: "must differ from models.stable (v1): answers could not tell the two models apart" },
      { path: "/models/versionHeader", reason: "give one version source: versionField (in the JSON answer) or versionHeader, not both" },
    ]);
    const bad = await h.app.inject({
      method: "POST",
      url: "/v1/rollouts",
      payload: managedSpec({ models: { stable: "v 1", canary: "v2", versionField: "a..b" } }),
    });
    expect(bad.statusCode).toBe(400);
    expect(
      bad
        .json()
        .details.map((d: { path: string }) => d.path)
        .sort(),
    ).toEqual(["/models/stable", "/models/versionField"]);
  });
});

describe("the finalize webhook", () => {
  let server: Server | null = null;
  afterEach(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = null;
  });

  it("is POSTed the rollout when it succeeds; failures are retried and shown, a 2xx starts the verification", async () => {
    const bodies: Array<Record<string, unknown>> = [];
    let failures = 2;
    server = createServer((req, res) => {
      // Also the Envoy admin endpoint the controller asks which hosts each cluster reaches.
      if (req.url === "/clusters?format=json") {
        const cluster = (name: string, address: string) => ({ name, host_statuses: [{ address: { socket_address: { address, port_value: 8080 } } }] });
        res.writeHead(200).end(JSON.stringify({ cluster_statuses: [cluster("stable", "10.1.0.1"), cluster("canary", "10.1.0.2")] }));
        return;
      }
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        bodies.push(JSON.parse(Buffer.concat(chunks).toString("utf8")));
        res.writeHead(failures-- > 0 ? 503 : 202).end();
      });
    });
    await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const url = `${base}/hooks/promote`;
    const { h, answers } = await succeeded({ finalize: { webhook: { url }, verifyAnswers: 50 } }, { envoyAdminUrls: [base], upstreamsIntervalMs: 0 });
    await h.app.modelroll.driver.hooks.settle();
    const first = await h.view();
    expect(first.phase).toBe("Succeeded");
    expect(first.finalizeHook).toMatchObject({ attempts: 1, lastError: "answered 503", deliveredAt: null });
    // The URL is a secret (it may carry a token): shown redacted, the host and a fingerprint.
    const shown = `http://127.0.0.1:${(server.address() as AddressInfo).port}/<redacted:${fingerprint(url)}>`;
    expect(first.pending).toMatch(
      new RegExp(`^finalize: the webhook ${shown} is asked to make stable serve v2 \\(attempt 1 failed: answered 503; next try at `),
    );
    expect(first.pending).not.toContain("/hooks/promote");
    expect(first.spec.finalize.webhook.url).toBe(shown);
    // Rounds move the clock 10 s: the retries are due again (1 s, then 2 s later).
    await h.round();
    await h.app.modelroll.driver.hooks.settle();
    expect((await h.view()).finalizeHook).toMatchObject({ attempts: 2, lastError: "answered 503" });
    await h.round();
    await h.app.modelroll.driver.hooks.settle();
    const delivered = await h.view();
    expect(delivered.phase).toBe("Finalizing");
    expect(delivered.finalizeHook).toMatchObject({ attempts: 3, lastError: null });
    expect(bodies).toHaveLength(3);
    expect(bodies[0]).toMatchObject({
      event: "rollout.succeeded",
      rollout: "fraud-model",
      models: { stable: "v1", canary: "v2" },
      action: "make the stable deployment serve v2 (it serves v1)",
    });
    // Which model is which, in the view the CD system gets.
    expect((bodies[0]!.view as { variants: { text: string } }).variants.text).toBe("stable v1 at 10.1.0.1:8080 · canary v2 at 10.1.0.2:8080");
    answers.serves.stable = "canary";
    await h.round();
    await h.round();
    const entry = (await h.app.inject({ url: "/v1/rollouts?archived=true" })).json().rollouts[0];
    expect(entry).toMatchObject({ phase: "Finalized" });
    const decisions = (await h.app.inject({ url: `/v1/archive/${entry.archived.id}/history` })).json().decisions;
    expect(decisions.find((d: { kind: string }) => d.kind === "finalizeRequested")).toMatchObject({ actor: "finalize-webhook" });
  });
});
