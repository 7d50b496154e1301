// GET /v1/events: the dashboard's stream of every rollout (batched), and of one rollout with its evaluation.
import { describe, expect, it } from "vitest";
import { CONTENT_SECURITY_POLICY } from "../../controller/src/http/browser-guard.ts";
import { harness, managedSpec } from "../release/harness.ts";
import { createRollout, metricValue, spec, testApp } from "./helpers.ts";
import { listen, openStream } from "./sse-reader.ts";

const named = (name: string, prefix: string) => spec({ name, match: { pathPrefix: prefix } });

describe("GET /v1/events", () => {
  it("sends every rollout at once, then changes batched into one event, and removals", async () => {
    const app = await testApp({ tickIntervalMs: 0 });
    for (let i = 0; i < 3; i++) await createRollout(app, named(`m${i}`, `/m${i}`));
    const base = await listen(app);
    const { status, headers, reader } = await openStream(base, "/v1/events");
    expect(status).toBe(200);
    // Hijacked, so it writes its own head: with the browser headers every other answer carries.
    expect(headers["content-security-policy"]).toBe(CONTENT_SECURITY_POLICY);
    expect(headers["x-frame-options"]).toBe("DENY");
    await reader!.waitFor("the full event", () => reader!.events.length >= 1);
    const first = reader!.json(0);
    expect(first.full).toBe(true);
    expect(first.items.map((i: { name: string }) => i.name).sort()).toEqual(["m0", "m1", "m2"]);
    expect(first.items[0]).toMatchObject({ managed: false, phase: null, canaryPercent: 0, attention: [] });
    expect(await metricValue(app, "modelroll_dashboard_streams")).toBe(1);

    // Three writes in the same turn (no batch tick can come between): one event carrying all three.
    for (let i = 0; i < 3; i++) app.modelroll.store.setCanaryPercent(`m${i}`, 10 + i);
    await reader!.waitFor("the batch", () => reader!.events.length >= 2);
    await new Promise((r) => setTimeout(r, 700));
    expect(reader!.events).toHaveLength(2);
    const batch = reader!.json(1);
    expect(batch.full).toBe(false);
    expect(batch.items.map((i: { name: string; canaryPercent: number }) => [i.name, i.canaryPercent]).sort()).toEqual([
      ["m0", 10],
      ["m1", 11],
      ["m2", 12],
    ]);

    await app.inject({ method: "POST", url: "/v1/rollouts/m1/rollback" });
    await app.inject({ method: "DELETE", url: "/v1/rollouts/m2" });
    await reader!.waitFor(
      "the rollback and the removal",
      () =>
        reader!.events.slice(2).some((e) => JSON.parse(e.data).removed.includes("m2")) &&
        reader!.events.slice(2).some((e) => JSON.parse(e.data).items.some((i: { name: string }) => i.name === "m1")),
    );
    const m1 = reader!.events
      .slice(2)
      .map((e) => JSON.parse(e.data).items.find((i: { name: string }) => i.name === "m1"))
      .find(Boolean);
    expect(m1.attention).toEqual(["rolled back"]);
    // Nothing changes: nothing is sent.
    const count = reader!.events.length;
    await new Promise((r) => setTimeout(r, 1200));
    expect(reader!.events.length).toBe(count);
  });

  it("resumes from Last-Event-ID with only what changed, and sends everything to an unknown id", async () => {
    const app = await testApp({ tickIntervalMs: 0 });
    for (let i = 0; i < 3; i++) await createRollout(app, named(`m${i}`, `/m${i}`));
    const base = await listen(app);
    const first = await openStream(base, "/v1/events");
    await first.reader!.waitFor("the full event", () => first.reader!.events.length >= 1);
    const lastId = first.reader!.events[0].id!;
    first.reader!.close();

    await app.inject({ method: "PUT", url: "/v1/rollouts/m1/weight", payload: { canaryPercent: 30 } });
    await app.inject({ method: "DELETE", url: "/v1/rollouts/m2" });
    const resumed = await openStream(base, "/v1/events", { "last-event-id": lastId });
    await resumed.reader!.waitFor("the missed changes", () => resumed.reader!.events.length >= 1);
    const missed = resumed.reader!.json(0);
    expect(missed.full).toBe(false);
    expect(missed.items.map((i: { name: string }) => i.name)).toEqual(["m1"]);
    expect(missed.removed).toEqual(["m2"]);

    const stranger = await openStream(base, "/v1/events", { "last-event-id": "0000.3" });
    await stranger.reader!.waitFor("a full event", () => stranger.reader!.events.length >= 1);
    expect(stranger.reader!.json(0).full).toBe(true);
    expect(
      stranger
        .reader!.json(0)
        .items.map((i: { name: string }) => i.name)
        .sort(),
    ).toEqual(["m0", "m1"]);
  });

  it("follows one rollout with its plan, the engine's latest evaluation and its view", async () => {
    const h = await harness({ tickSeconds: 10 });
    await h.app.inject({ method: "POST", url: "/v1/rollouts", payload: managedSpec() });
    await h.app.inject({ method: "POST", url: "/v1/rollouts", payload: spec({ name: "other", match: { pathPrefix: "/other" } }) });
    const base = await listen(h.app);
    const { reader } = await openStream(base, "/v1/events?rollout=fraud-model");
    await reader!.waitFor("the first event", () => reader!.events.length >= 1);
    const first = reader!.json(0);
    expect(first.items).toHaveLength(1);
    expect(first.items[0]).toMatchObject({ name: "fraud-model", phase: "Pending", owner: "team-fraud", stageCount: 4 });
    expect(first.items[0].plan.map((s: { name: string }) => s.name)).toEqual(["shadow", "10%", "50%", "100%"]);
    expect(first.views["fraud-model"]).toEqual((await h.app.inject({ url: "/v1/rollouts/fraud-model" })).json());

    await h.round();
    await h.round();
    await reader!.waitFor("an evaluation", () => reader!.events.some((e) => JSON.parse(e.data).items[0]?.evaluation?.measurements?.length > 0));
    const withEvaluation = reader!.events.map((e) => JSON.parse(e.data)).find((d) => d.items[0]?.evaluation);
    expect(withEvaluation.items[0].phase).toBe("Shadowing");
    expect(withEvaluation.items[0].evaluation.measurements[0]).toHaveProperty("sampleSizes");
    expect((await openStream(base, "/v1/events?rollout=nope")).status).toBe(404);
  });
});
