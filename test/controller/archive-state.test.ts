// The archive and the lifecycle fields in the state file: they survive a restart, a re-created name never
// inherits them, and a file written before them (schema 1) is read as is and upgraded.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { SqliteRolloutState, STATE_SCHEMA_VERSION } from "../../controller/src/rollouts/sqlite-state.ts";
import { harness, managedSpec } from "../release/harness.ts";
import { createRollout, spec, testApp } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "modelroll-archive-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const stateFile = () => join(dir, `state-${++files}.db`);

describe("the archive in the state file", () => {
  it("survives a restart with every decision, under its own id, apart from a re-created rollout of the same name", async () => {
    const file = stateFile();
    const h = await harness({ stateFile: file });
    await createRollout(h.app, managedSpec());
    for (let i = 0; i < 5; i++) await h.round();
    const history = (await h.app.inject({ url: "/v1/rollouts/fraud-model/history" })).json().decisions;
    expect((await h.app.inject({ method: "DELETE", url: "/v1/rollouts/fraud-model" })).statusCode).toBe(204);
    await createRollout(h.app, managedSpec());
    await h.round();
    await h.app.close();

    const again = await testApp({ stateFile: file });
    const listed = (await again.inject({ url: "/v1/rollouts?archived=true" })).json().rollouts;
    expect(listed.map((r: { name: string; archived: { id: number } }) => [r.name, r.archived.id])).toEqual([["fraud-model", 1]]);
    expect((await again.inject({ url: "/v1/archive/1/history" })).json().decisions).toEqual(history);
    const live = (await again.inject({ url: "/v1/rollouts/fraud-model/history" })).json().decisions;
    expect(live.map((d: { kind: string }) => d.kind)).toEqual(["started"]);
    // The next archived rollout gets the next id, also after the restart.
    expect((await again.inject({ method: "DELETE", url: "/v1/rollouts/fraud-model" })).headers["x-archived-id"]).toBe("2");
    // One controller per state file: the app lets go of it before another reader opens it.
    await again.close();
    const reader = new SqliteRolloutState(file);
    const counts = reader.counts();
    reader.close();
    expect(counts).toMatchObject({ rollouts: 0, decisions: 0, archive: 2 });
    expect(counts.archivedDecisions).toBe(history.length + 1);
  });

  it("reads a schema-1 file (no models, release part, rollback note or archive) and from then on writes schema 2", async () => {
    const file = stateFile();
    const first = await testApp({ stateFile: file });
    await createRollout(first, spec({ canaryPercent: 5 }));
    await first.close();
    // Make it look as a schema-1 controller wrote it.
    const db = new Database(file);
    const row = db.prepare("SELECT record FROM rollouts").get() as { record: string };
    const record = JSON.parse(row.record);
    delete record.lastRollbackNote;
    delete record.finalizeHook;
    delete record.spec.models;
    delete record.spec.release;
    db.prepare("UPDATE rollouts SET record = ?").run(JSON.stringify(record));
    db.prepare("UPDATE meta SET value = '1' WHERE key = 'schema'").run();
    db.exec("DROP TABLE archive; DROP TABLE archived_decisions;");
    db.close();

    const second = await testApp({ stateFile: file });
    const view = (await second.inject({ url: "/v1/rollouts/fraud-model" })).json();
    expect(view).toMatchObject({ canaryPercent: 5, lastRollback: null, finalizeHook: null, spec: { models: null } });
    expect((await second.inject({ method: "DELETE", url: "/v1/rollouts/fraud-model" })).statusCode).toBe(204);
    await second.close();
    const check = new Database(file);
    expect((check.prepare("SELECT value FROM meta WHERE key = 'schema'").get() as { value: string }).value).toBe(String(STATE_SCHEMA_VERSION));
    check.close();
  });
});
