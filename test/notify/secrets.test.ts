// Webhook URLs are secrets: the notification targets', a webhook gate's and the finalize webhook's. They are
// never in what the controller answers or logs (the view, the list, the history, the report, both event
// streams, the deliveries, /metrics, the OpenAPI document, the `modelroll` command's output, the log lines
// of failed deliveries), only redacted. A spec read back (with the redacted URLs) and PUT keeps the real ones;
// a create with a redacted URL is refused at its pointer.
import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { createRollout } from "../controller/helpers.ts";
import { listen, openStream } from "../controller/sse-reader.ts";
import { cliFor } from "../cli/helpers.ts";
import { harness, managedSpec, type Harness } from "../release/harness.ts";
import { eventually, Receiver } from "./receiver.ts";

const TOKENS = { hook: "HOOKtoken0123456789", slack: "SLACKtoken0123456789", judge: "JUDGEkey0123456789", finalize: "FINALIZEtoken0123456789" };

const open: Receiver[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((r) => r.close()));
});

function leaks(text: string): string[] {
  return Object.values(TOKENS).filter((t) => text.includes(t));
}

describe("secrets", () => {
  it("no answer, stream, metric, CLI output or log line carries a webhook URL; PUT of the view read back keeps them", { timeout: 60_000 }, async () => {
    const hooks = await Receiver.start();
    open.push(hooks);
    // Every receiver fails at first, so every failure path logs; the finalize webhook always (the rollout stays Succeeded).
    let failing = true;
    hooks.answer = (path) =>
      path.startsWith("/judge")
        ? { status: failing ? 503 : 200, body: { verdict: "pass", reason: "ok" } }
        : { status: failing || path.startsWith("/finalize") ? 503 : 200 };
    const lines: string[] = [];
    const sink = new Writable({
      write: (chunk, _enc, done) => {
        lines.push(String(chunk));
        done();
      },
    });
    const h: Harness = await harness({ app: { logger: { level: "debug", stream: sink }, notifications: { retryBaseMs: 20, retryMaxMs: 50 } } });
    const urls = {
      hook: `${hooks.base}/hook?token=${TOKENS.hook}`,
      slack: `${hooks.base}/slack/T0/B0/${TOKENS.slack}`,
      judge: `${hooks.base}/judge?key=${TOKENS.judge}`,
      finalize: `${hooks.base}/finalize/${TOKENS.finalize}`,
    };
    const spec = managedSpec({
      stages: [10, 100],
      promotion_gates: { error_rate: { maximum: 0.01 }, llm_judge: { webhook: { url: urls.judge, intervalSeconds: 1 } } },
      finalize: { webhook: { url: urls.finalize } },
      notifications: {
        targets: [
          { name: "hook", url: urls.hook },
          { name: "slack", format: "slack", url: urls.slack },
        ],
      },
    });
    await createRollout(h.app, spec);
    for (let i = 0; i < 4; i++) {
      await h.round();
      await h.app.modelroll.driver.judges!.settle();
    }
    failing = false;
    for (let i = 0; i < 30 && (await h.view()).phase !== "Succeeded"; i++) {
      await h.round();
      await h.app.modelroll.driver.judges!.settle();
    }
    expect((await h.view()).phase).toBe("Succeeded");
    await eventually("every event delivered", async () => (await h.app.inject({ url: "/v1/notifications?state=pending" })).json().deliveries.length === 0);

    const base = await listen(h.app);
    const texts: Record<string, string> = {};
    for (const path of [
      "/v1/rollouts",
      "/v1/rollouts/fraud-model",
      "/v1/rollouts/fraud-model/history",
      "/v1/rollouts/fraud-model/report",
      "/v1/rollouts/fraud-model/report?format=markdown",
      "/v1/notifications?limit=1000",
      "/metrics",
      "/openapi.json",
    ]) {
      const res = await fetch(base + path);
      expect(res.status, path).toBe(200);
      texts[path] = await res.text();
    }
    for (const path of ["/v1/rollouts/fraud-model/events", "/v1/events?rollout=fraud-model"]) {
      const { reader } = await openStream(base, path);
      await reader!.waitFor(`the first event of ${path}`, () => reader!.events.length > 0);
      texts[path] = reader!.events.map((e) => e.data).join("\n");
      reader!.close();
    }
    const cli = cliFor(base);
    for (const argv of [
      ["get", "fraud-model", "-o", "yaml"],
      ["get", "fraud-model", "-o", "json"],
      ["get", "fraud-model"],
      ["history", "fraud-model", "-o", "json"],
      ["report", "fraud-model"],
    ]) {
      const out = await cli(argv);
      expect(out.code, `${argv.join(" ")}: ${out.stderr}`).toBe(0);
      texts[`modelroll ${argv.join(" ")}`] = out.stdout + out.stderr;
    }
    texts.logs = lines.join("");
    for (const [where, text] of Object.entries(texts)) expect(leaks(text), where).toEqual([]);

    // They are there, redacted, and the failures were logged (without them).
    const view = JSON.parse(texts["/v1/rollouts/fraud-model"]);
    const redacted = /^http:\/\/127\.0\.0\.1:\d+\/<redacted:[0-9a-f]{8}>$/;
    expect(view.spec.notifications.targets.map((t: { url: string }) => t.url)).toEqual([expect.stringMatching(redacted), expect.stringMatching(redacted)]);
    expect(view.spec.promotion_gates.llm_judge.webhook.url).toMatch(redacted);
    expect(view.spec.finalize.webhook.url).toMatch(redacted);
    expect(texts.logs).toContain("notification delivery failed; retrying");
    expect(texts.logs).toContain("webhook gate: the judge did not answer");
    expect(texts.logs).toContain("finalize webhook failed; retrying");
    expect(texts.logs).toMatch(/"url":"http:\/\/127\.0\.0\.1:\d+\/<redacted:[0-9a-f]{8}>"/);
    const received = hooks.accepted.map((r) => r.path);
    expect(received.some((p) => p.includes(TOKENS.hook))).toBe(true);

    // The release part as read (the URLs redacted), sent back: nothing changes, and deliveries still go to the real URLs.
    const revision = view.revision;
    const readBack = { ...spec, promotion_gates: view.spec.promotion_gates, finalize: view.spec.finalize, notifications: view.spec.notifications };
    expect(leaks(JSON.stringify(readBack))).toEqual([]);
    const same = await h.app.inject({ method: "PUT", url: "/v1/rollouts/fraud-model", payload: readBack });
    expect(same.statusCode, same.body).toBe(200);
    expect(same.json().revision).toBe(revision);
    const changed = await h.app.inject({
      method: "PUT",
      url: "/v1/rollouts/fraud-model",
      payload: { ...readBack, owner: "team-risk" },
      headers: { "x-actor": "bob" },
    });
    expect(changed.statusCode, changed.body).toBe(200);
    const history = (await h.app.inject({ url: "/v1/rollouts/fraud-model/history" })).json().decisions;
    expect(history.at(-1).reason).toBe("spec changed by bob: owner team-fraud -> team-risk");
    hooks.received.length = 0;
    expect((await h.app.inject({ method: "POST", url: "/v1/rollouts/fraud-model/rollback" })).statusCode).toBe(200);
    await eventually("the rollback announced", () => hooks.accepted.filter((r) => r.body?.type === "rollout.rolled_back" || r.body?.text).length === 2);
    expect(
      hooks.accepted
        .map((r) => r.path)
        .filter((p) => !p.startsWith("/judge"))
        .sort(),
    ).toEqual([`/hook?token=${TOKENS.hook}`, `/slack/T0/B0/${TOKENS.slack}`]);

    // A new rollout cannot be created with a redacted URL: there is nothing to restore it from.
    const refused = await h.app.inject({ method: "POST", url: "/v1/rollouts", payload: { ...readBack, name: "other", match: { pathPrefix: "/other" } } });
    expect(refused.statusCode).toBe(400);
    expect(refused.json().details).toEqual(
      expect.arrayContaining([
        { path: "/notifications/targets/0/url", reason: expect.stringMatching(/^is a redacted URL as GET shows it/) },
        { path: "/promotion_gates/llm_judge/webhook/url", reason: expect.stringMatching(/^is a redacted URL as GET shows it/) },
      ]),
    );
  });
});

describe("the OpenAPI document", () => {
  it("describes the notifications section, the redacted view and the deliveries route", async () => {
    const h = await harness();
    const doc = (await h.app.inject({ url: "/openapi.json" })).json();
    const input = doc.components.schemas.NotificationsInput;
    expect(Object.keys(input.properties)).toEqual(["targets", "controllerTargets", "gateErrorAfterSeconds"]);
    expect(Object.keys(input.properties.targets.items.properties)).toEqual(["name", "format", "url", "events", "timeoutMs"]);
    expect(input.properties.targets.items.properties.events.items.anyOf.flatMap((e: { enum: string[] }) => e.enum)).toContain("gate_error");
    const view = doc.paths["/v1/rollouts/{name}"].get.responses["200"].content["application/json"].schema;
    expect(view.properties.spec.properties.notifications.properties.targets.items.properties.url.description).toMatch(/^Redacted/);
    expect(doc.paths["/v1/notifications"].get.summary).toMatch(/^Notification deliveries/);
    // The request body spells the section out in full (rollouts/spec-doc.ts), real URLs expected there.
    const body = doc.paths["/v1/rollouts"].post.requestBody.content["application/json"].schema;
    expect(Object.keys(body.properties.notifications.properties)).toEqual(["targets", "controllerTargets", "gateErrorAfterSeconds"]);
    expect(body.properties.notifications.properties.targets.items.properties.url.description ?? "").not.toMatch(/^Redacted/);
  });
});
