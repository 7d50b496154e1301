// The config distribution seam (filter-config/distributor.ts): every distributor gets the same projection the
// long-poll serves, once at start and once per commit that moved the config version, in commit order; a write
// the proxies cannot see publishes nothing; a distributor that throws neither fails the write nor keeps the
// others from the change.
import { describe, expect, it } from "vitest";
import { startDistribution, type ConfigDistributor } from "../../controller/src/filter-config/distributor.ts";
import { filterConfigOf, type FilterConfig } from "../../controller/src/filter-config/projection.ts";
import { SqliteRolloutState } from "../../controller/src/rollouts/sqlite-state.ts";
import { RolloutStore } from "../../controller/src/rollouts/store.ts";
import { createRollout, spec, testApp } from "./helpers.ts";

class Recorder implements ConfigDistributor {
  readonly kind = "recorder";
  readonly published: FilterConfig[] = [];
  closed = 0;
  publish(config: FilterConfig): void {
    this.published.push(config);
  }
  close(): void {
    this.closed += 1;
  }
}

describe("config distributors", () => {
  it("get what the long-poll serves: at start, then once per version move, in order", async () => {
    const recorder = new Recorder();
    const app = await testApp({ configDistributors: [recorder] });
    const served = async () => (await app.inject({ url: "/v1/filter-config" })).json();
    expect(recorder.published).toEqual([await served()]);

    await createRollout(app, spec({ canaryPercent: 5, shadow: { percent: 10 } }));
    expect(recorder.published.at(-1)).toEqual(await served());
    await createRollout(app, spec({ name: "idle", match: { pathPrefix: "/idle" } }));
    // Commits the proxies cannot see publish nothing: the same weight again (no write), a rollback of a canary
    // that had no traffic (a write and an event, but the config version stays).
    expect((await app.inject({ method: "PUT", url: "/v1/rollouts/fraud-model/weight", payload: { canaryPercent: 5 } })).statusCode).toBe(200);
    expect((await app.inject({ method: "POST", url: "/v1/rollouts/idle/rollback" })).json().lastRollbackAt).not.toBeNull();
    expect(recorder.published).toHaveLength(3);
    expect((await app.inject({ method: "POST", url: "/v1/rollouts/fraud-model/rollback", payload: { reason: "bad" } })).statusCode).toBe(200);
    expect((await app.inject({ method: "DELETE", url: "/v1/rollouts/fraud-model" })).statusCode).toBe(204);
    expect(recorder.published.map((c) => c.version)).toEqual([1, 2, 3, 4, 5]);
    const weights = recorder.published.map((c) => c.rollouts.map((r) => `${r.name} ${r.canaryBasisPoints} ${r.shadow?.basisPoints ?? "-"}`));
    expect(weights).toEqual([[], ["fraud-model 500 1000"], ["fraud-model 500 1000", "idle 0 -"], ["fraud-model 0 0", "idle 0 -"], ["idle 0 -"]]);
    expect(recorder.published.at(-1)).toEqual(await served());

    await app.close();
    expect(recorder.closed).toBe(1);
  });

  it("a distributor that throws neither fails the commit nor keeps the others from it", () => {
    const state = new SqliteRolloutState(":memory:");
    const store = new RolloutStore({ state, epoch: "0123456789abcdef" });
    const failing: ConfigDistributor = {
      kind: "failing",
      publish: (config) => {
        if (config.version > 1) throw new Error("push refused");
      },
      close: () => undefined,
    };
    const after = new Recorder();
    const errors: string[] = [];
    const stop = startDistribution(store, [failing, after], { onError: (d, error) => errors.push(`${d.kind}: ${(error as Error).message}`) });
    store.create(spec({ canaryPercent: 5 }) as never);
    expect(store.version).toBe(2);
    expect(after.published.map((c) => c.version)).toEqual([1, 2]);
    expect(after.published[1]).toEqual(filterConfigOf(store));
    expect(errors).toEqual(["failing: push refused"]);

    // Without onError the commit's caller hears of it, after every distributor was called.
    const plainState = new SqliteRolloutState(":memory:");
    const plain = new RolloutStore({ state: plainState });
    const second = new Recorder();
    startDistribution(plain, [failing, second]);
    expect(() => plain.create(spec({ canaryPercent: 5 }) as never)).toThrow(/push refused/);
    expect(second.published.map((c) => c.version)).toEqual([1, 2]);
    plainState.close();

    stop();
    stop();
    expect(after.closed).toBe(1);
    store.create(spec({ name: "other", match: { pathPrefix: "/other" } }) as never);
    expect(after.published).toHaveLength(2);
    state.close();
  });
});
