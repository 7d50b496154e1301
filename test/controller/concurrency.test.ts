// Optimistic concurrency: every rollout has a revision, served as its ETag; a write carrying an If-Match the
// rollout no longer has is refused with 412 and changes nothing, so of two operators acting on the same view
// exactly one wins and the other is told to read again.
import { describe, expect, it } from "vitest";
import { harness, managedSpec } from "../release/harness.ts";
import { createRollout, spec, testApp } from "./helpers.ts";

describe("If-Match on writes", () => {
  it("serves the revision as the ETag and refuses a stale If-Match with 412, changing nothing", async () => {
    const app = await testApp();
    await createRollout(app, spec({ canaryPercent: 5 }));
    const read = await app.inject({ url: "/v1/rollouts/fraud-model" });
    expect(read.headers.etag).toBe('"1"');
    expect(read.json().revision).toBe(1);

    const first = await app.inject({ method: "PUT", url: "/v1/rollouts/fraud-model/weight", headers: { "if-match": '"1"' }, payload: { canaryPercent: 10 } });
    expect(first.statusCode).toBe(200);
    expect(first.headers.etag).toBe('"2"');

    const stale = await app.inject({ method: "PUT", url: "/v1/rollouts/fraud-model/weight", headers: { "if-match": '"1"' }, payload: { canaryPercent: 50 } });
    expect(stale.statusCode).toBe(412);
    expect(stale.json().error).toMatch(/^rollout fraud-model: changed since you read it: If-Match "1", current revision "2"/);
    expect((await app.inject({ url: "/v1/rollouts/fraud-model" })).json().canaryPercent).toBe(10);

    for (const [method, url] of [
      ["POST", "/v1/rollouts/fraud-model/rollback"],
      ["DELETE", "/v1/rollouts/fraud-model"],
    ] as const) {
      expect((await app.inject({ method, url, headers: { "if-match": '"1"' } })).statusCode).toBe(412);
    }
    expect((await app.inject({ url: "/v1/rollouts/fraud-model" })).json()).toMatchObject({ canaryPercent: 10, revision: 2 });

    // A weak tag, a list, and * all match; no header is a plain write (last writer wins, as without ETags).
    expect(
      (await app.inject({ method: "PUT", url: "/v1/rollouts/fraud-model/weight", headers: { "if-match": 'W/"2"' }, payload: { canaryPercent: 11 } }))
        .statusCode,
    ).toBe(200);
    expect(
      (await app.inject({ method: "PUT", url: "/v1/rollouts/fraud-model/weight", headers: { "if-match": '"9", "3"' }, payload: { canaryPercent: 12 } }))
        .statusCode,
    ).toBe(200);
    expect(
      (await app.inject({ method: "PUT", url: "/v1/rollouts/fraud-model/weight", headers: { "if-match": "*" }, payload: { canaryPercent: 13 } })).statusCode,
    ).toBe(200);
    expect((await app.inject({ method: "PUT", url: "/v1/rollouts/fraud-model/weight", payload: { canaryPercent: 14 } })).statusCode).toBe(200);
    expect((await app.inject({ method: "DELETE", url: "/v1/rollouts/fraud-model", headers: { "if-match": '"6"' } })).statusCode).toBe(204);
  });

  it("of two writes made on the same view at the same moment, exactly one lands", async () => {
    const app = await testApp();
    await createRollout(app, spec({ canaryPercent: 5 }));
    const etag = (await app.inject({ url: "/v1/rollouts/fraud-model" })).headers.etag as string;
    const [a, b] = await Promise.all(
      [20, 30].map((canaryPercent) =>
        app.inject({ method: "PUT", url: "/v1/rollouts/fraud-model/weight", headers: { "if-match": etag }, payload: { canaryPercent } }),
      ),
    );
    expect([a.statusCode, b.statusCode].sort()).toEqual([200, 412]);
    const winner = a.statusCode === 200 ? 20 : 30;
    expect((await app.inject({ url: "/v1/rollouts/fraud-model" })).json().canaryPercent).toBe(winner);
  });

  it("engine commands: a promote on a stale view is refused; holds by the engine do not make the view stale", async () => {
    const h = await harness();
    await createRollout(h.app, managedSpec({ promotion_gates: { error_rate: { maximum: 0.01 }, human_review_score: { minimum_delta: -0.5 } } }));
    await h.round();
    let read = await h.app.inject({ url: "/v1/rollouts/fraud-model" });
    expect(read.json().phase).toBe("Shadowing");
    const etag = read.headers.etag as string;
    // A tick that only holds the stage keeps the revision.
    await h.round(10);
    read = await h.app.inject({ url: "/v1/rollouts/fraud-model" });
    expect(read.headers.etag).toBe(etag);
    // External measurements from automation do not either.
    const posted = await h.app.inject({
      method: "POST",
      url: "/v1/rollouts/fraud-model/measurements",
      payload: { metric: "human_review_score", variant: "canary", values: [0.8, 0.9] },
    });
    expect(posted.statusCode, posted.body).toBe(200);
    expect((await h.app.inject({ url: "/v1/rollouts/fraud-model" })).headers.etag).toBe(etag);

    const pause = await h.app.inject({ method: "POST", url: "/v1/rollouts/fraud-model/pause", headers: { "if-match": etag } });
    expect(pause.statusCode).toBe(200);
    expect(pause.headers.etag).not.toBe(etag);
    const promote = await h.app.inject({ method: "POST", url: "/v1/rollouts/fraud-model/promote", headers: { "if-match": etag } });
    expect(promote.statusCode).toBe(412);
    const view = (await h.app.inject({ url: "/v1/rollouts/fraud-model" })).json();
    expect(view).toMatchObject({ phase: "Paused", stage: { name: "shadow" } });
    // A command that does not fit the phase is still a 409, whatever the ETag.
    const undo = await h.app.inject({ method: "POST", url: "/v1/rollouts/fraud-model/undo", headers: { "if-match": pause.headers.etag as string } });
    expect(undo.statusCode).toBe(409);
  });
});
