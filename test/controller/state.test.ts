// Durable state: a controller restarted on its SQLite file resumes every rollout where it was (weights,
// config epoch and version, engine phase and stage, the whole decision history), a failed write changes
// nothing, and a file from a newer controller is refused rather than misread.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import type { RolloutPersistence, StateChange } from "../../controller/src/rollouts/persistence.ts";
import { SqliteRolloutState, STATE_SCHEMA_VERSION } from "../../controller/src/rollouts/sqlite-state.ts";
import { filterConfigOf } from "../../controller/src/filter-config/projection.ts";
import { RolloutStore } from "../../controller/src/rollouts/store.ts";
import { harness, managedSpec } from "../release/harness.ts";
import { createRollout, spec, testApp } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "modelroll-state-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const stateFile = () => join(dir, `state-${++files}.db`);

describe("durable state", () => {
  it("a manual rollout comes back with its weights, and the filters' epoch and version are the same", async () => {
    const file = stateFile();
    const first = await testApp({ stateFile: file, epoch: "aaaaaaaaaaaaaaaa" });
    await createRollout(first, spec({ canaryPercent: 5, shadow: { percent: 20 } }));
    expect((await first.inject({ method: "PUT", url: "/v1/rollouts/fraud-model/weight", payload: { canaryPercent: 12.5 } })).statusCode).toBe(200);
    expect((await first.inject({ method: "POST", url: "/v1/rollouts/fraud-model/rollback" })).statusCode).toBe(200);
    expect((await first.inject({ method: "PUT", url: "/v1/rollouts/fraud-model/weight", payload: { canaryPercent: 7 } })).statusCode).toBe(200);
    const before = (await first.inject({ url: "/v1/rollouts/fraud-model" })).json();
    const configBefore = (await first.inject({ url: "/v1/filter-config" })).json();
    await first.close();

    // A different epoch asked for: the file's wins, or every filter would refetch and count a config change.
    const second = await testApp({ stateFile: file, epoch: "bbbbbbbbbbbbbbbb" });
    expect(second.modelroll.store.resumed).toBe(true);
    expect((await second.inject({ url: "/v1/rollouts/fraud-model" })).json()).toEqual(before);
    expect((await second.inject({ url: "/v1/filter-config" })).json()).toEqual(configBefore);
    expect(configBefore.epoch).toBe("aaaaaaaaaaaaaaaa");
    expect(before).toMatchObject({ canaryPercent: 7, shadowPercent: 0, revision: 4 });
    expect(before.lastRollbackAt).not.toBeNull();
    // A filter that already holds this version waits instead of being answered at once.
    const held = await second.inject({ url: `/v1/filter-config?version=${configBefore.version}&epoch=${configBefore.epoch}&wait=1` });
    expect(held.statusCode).toBe(304);
  });

  it("a managed rollout resumes in the same phase and stage with its full history, and goes on from there", async () => {
    const file = stateFile();
    const h = await harness({ stateFile: file });
    await createRollout(h.app, managedSpec());
    let view = await h.view();
    for (let i = 0; i < 100 && !(view.phase === "Canary" && view.stage?.name === "10%"); i++) {
      await h.round();
      view = await h.view();
    }
    expect(view).toMatchObject({ phase: "Canary", stage: { name: "10%" }, canaryPercent: 10 });
    // A couple of ticks inside the stage, so its window has a baseline to keep.
    await h.round();
    view = await h.view();
    const history = (await h.app.inject({ url: "/v1/rollouts/fraud-model/history" })).json();
    const engineBefore = h.app.modelroll.store.get("fraud-model").engine!;
    // As a kill would, only the file's lock is released (the first controller stays in memory, unstopped):
    // the second controller reads what the first committed.
    h.app.modelroll.state.close();
    const h2 = await harness({ stateFile: file, resume: { sim: h.sim, now: h.now() } });
    expect(await h2.view()).toEqual(view);
    expect((await h2.app.inject({ url: "/v1/rollouts/fraud-model/history" })).json()).toEqual(history);
    expect(h2.app.modelroll.store.get("fraud-model").engine!.state).toEqual(engineBefore.state);
    expect(history.decisions.length).toBeGreaterThan(2);
    await h.app.close();

    const seen: string[] = [];
    for (let i = 0; i < 200; i++) {
      await h2.round();
      const v = await h2.view();
      const label = `${v.phase} ${v.stage?.name}`;
      if (seen.at(-1) !== label) seen.push(label);
      if (v.phase === "Succeeded") break;
    }
    expect(seen).toEqual(["Canary 10%", "Canary 50%", "Baking 100%", "Succeeded 100%"]);
    const after = (await h2.app.inject({ url: "/v1/rollouts/fraud-model/history" })).json();
    // The history goes on from the saved one: nothing lost, nothing repeated.
    expect(after.decisions.slice(0, history.decisions.length)).toEqual(history.decisions);
    expect(after.decisions.filter((d: { kind: string }) => d.kind === "started")).toHaveLength(1);

    // Every decision is a row, with the stage window it was made on in its record (the report reads them from
    // there); read once the controller let go of the file.
    await h2.app.close();
    const db = new Database(file, { readonly: true });
    const rows = (db.prepare("SELECT COUNT(*) AS n FROM decisions").get() as { n: number }).n;
    const windows = (db.prepare("SELECT COUNT(*) AS n FROM decisions WHERE json_extract(record, '$.window') IS NOT NULL").get() as { n: number }).n;
    db.close();
    expect(rows).toBe(after.decisions.length);
    expect(windows).toBe(after.decisions.filter((d: { window: unknown }) => d.window !== null).length);
    expect(windows).toBeGreaterThan(0);
  });

  it("drops the stage_telemetry table earlier controllers wrote (a copy of the decisions' windows), but not in a file it refuses", () => {
    const tables = (path: string) => {
      const db = new Database(path, { readonly: true });
      const names = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>).map((t) => t.name);
      db.close();
      return names;
    };
    const withTelemetry = (schema: string) => {
      const file = stateFile();
      const first = new SqliteRolloutState(file);
      first.initialize("dddddddddddddddd", 1);
      first.close();
      const db = new Database(file);
      db.exec("CREATE TABLE stage_telemetry (rollout TEXT NOT NULL, seq INTEGER NOT NULL, window TEXT NOT NULL)");
      db.prepare("UPDATE meta SET value = ? WHERE key = 'schema'").run(schema);
      db.close();
      return file;
    };
    const older = withTelemetry(String(STATE_SCHEMA_VERSION));
    expect(tables(older)).toContain("stage_telemetry");
    new SqliteRolloutState(older).close();
    expect(tables(older)).not.toContain("stage_telemetry");
    expect(tables(older)).toEqual(expect.arrayContaining(["meta", "rollouts", "decisions", "archive", "archived_decisions"]));

    const newer = withTelemetry("99");
    expect(() => new SqliteRolloutState(newer)).toThrow(/written by a newer controller/);
    expect(tables(newer)).toContain("stage_telemetry");
  });

  it("a write that fails on disk changes nothing in memory and tells the client", async () => {
    const inner = new SqliteRolloutState(":memory:");
    let failNext = false;
    const flaky: RolloutPersistence = {
      load: () => inner.load(),
      initialize: (epoch, version) => inner.initialize(epoch, version),
      write: (change: StateChange) => {
        if (failNext) throw new Error("state file x: write failed: disk I/O error");
        inner.write(change);
      },
      archivedDecisions: (id) => inner.archivedDecisions(id),
      close: () => inner.close(),
    };
    const store = new RolloutStore({ state: flaky });
    store.create(spec({ canaryPercent: 5 }) as never);
    const version = store.version;
    failNext = true;
    expect(() => store.setCanaryPercent("fraud-model", 50)).toThrow(/disk I\/O error/);
    expect(() => store.rollback("fraud-model")).toThrow(/disk I\/O error/);
    expect(() => store.delete("fraud-model")).toThrow(/disk I\/O error/);
    expect(store.get("fraud-model").canaryPercent).toBe(5);
    expect(store.version).toBe(version);
    expect(filterConfigOf(store).rollouts[0].canaryBasisPoints).toBe(500);
    failNext = false;
    expect(store.setCanaryPercent("fraud-model", 50).canaryPercent).toBe(50);
    inner.close();
  });

  it("deleting a rollout removes its history too: a new rollout of the same name starts clean", async () => {
    const file = stateFile();
    const h = await harness({ stateFile: file });
    await createRollout(h.app, managedSpec());
    await h.round();
    await h.round();
    expect((await h.app.inject({ method: "DELETE", url: "/v1/rollouts/fraud-model" })).statusCode).toBe(204);
    await createRollout(h.app, managedSpec());
    await h.app.close();
    const again = await testApp({ stateFile: file });
    const history = (await again.inject({ url: "/v1/rollouts/fraud-model/history" })).json();
    expect(history.phase).toBe("Pending");
    expect(history.decisions).toEqual([]);
  });

  it("refuses a state file written by a newer controller, and names the file", () => {
    const file = stateFile();
    const first = new SqliteRolloutState(file);
    first.initialize("cccccccccccccccc", 1);
    first.close();
    const db = new Database(file);
    db.prepare("UPDATE meta SET value = '99' WHERE key = 'schema'").run();
    db.close();
    expect(() => new SqliteRolloutState(file)).toThrow(`state file ${file}: written by a newer controller (schema 99, this one reads ${STATE_SCHEMA_VERSION})`);
  });

  it("names the file it cannot open", () => {
    // A directory where the file should be.
    expect(() => new SqliteRolloutState(dir)).toThrow(new RegExp(`^state file ${dir}: cannot open`));
  });
});
