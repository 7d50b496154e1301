// A rollout stays on the upstreams it was tested against (docs/notes/upstreams.md): a controller restarted with
// other upstreams declared holds a rollout that has begun (canary withdrawn, no stage moves, commands that would
// route to the canary refused) until an operator accepts the change or rolls it back; a rollout that has not
// begun takes the new ones. The Envoy admin's /clusters answer gives the same map for `npm run controller`.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseClusters } from "../../controller/src/envoy/admin-clusters.ts";
import { createRollout, spec, testApp } from "../controller/helpers.ts";
import { harness, managedSpec } from "./harness.ts";

const dir = mkdtempSync(join(tmpdir(), "modelroll-upstreams-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const stateFile = () => join(dir, `state-${++files}.db`);
const upstreams = (canary: string) => ({ stable: "http://127.0.0.1:9001", canary, shadow: canary });

describe("tested upstreams", () => {
  it("a manual rollout is held at 0% when its canary changed across a restart, and gets its weight back when accepted", async () => {
    const file = stateFile();
    const first = await testApp({ stateFile: file, upstreams: upstreams("http://127.0.0.1:9002") });
    const created = await createRollout(first, spec({ canaryPercent: 10 }));
    expect(created.upstreams).toMatchObject({
      tested: { stable: { cluster: "stable", endpoint: "127.0.0.1:9001" }, canary: { cluster: "canary", endpoint: "127.0.0.1:9002" }, source: "npm start" },
      held: null,
    });
    await first.close();

    // Same upstreams: nothing changes.
    const same = await testApp({ stateFile: file, upstreams: upstreams("http://127.0.0.1:9002") });
    expect(same.modelroll.upstreams.heldAtStart).toEqual([]);
    expect((await same.inject({ url: "/v1/rollouts/fraud-model" })).json()).toMatchObject({ canaryPercent: 10, revision: 1, upstreams: { held: null } });
    await same.close();

    const moved = await testApp({ stateFile: file, upstreams: upstreams("http://localhost:9003") });
    expect(moved.modelroll.upstreams.heldAtStart).toEqual(["fraud-model"]);
    const view = (await moved.inject({ url: "/v1/rollouts/fraud-model" })).json();
    expect(view).toMatchObject({ canaryPercent: 0, upstreams: { held: { withdrawn: { canaryPercent: 10 } } } });
    expect(view.pending).toBe(
      "held: its upstreams changed since it last ran: canary (cluster canary) was 127.0.0.1:9002, now localhost:9003. canary traffic withdrawn (was 10%): all of it goes to stable. If the new upstream is the one to release, POST /v1/rollouts/fraud-model/accept-upstreams: the weights come back as they were; otherwise roll it back (POST /v1/rollouts/fraud-model/rollback)",
    );
    const config = (await moved.inject({ url: "/v1/filter-config" })).json();
    expect(config.rollouts[0].canaryBasisPoints).toBe(0);
    const weight = await moved.inject({ method: "PUT", url: "/v1/rollouts/fraud-model/weight", payload: { canaryPercent: 20 } });
    expect(weight.statusCode).toBe(409);
    expect(weight.json().error).toContain("weights refused while held");

    const accepted = await moved.inject({ method: "POST", url: "/v1/rollouts/fraud-model/accept-upstreams", payload: { reason: "new build" } });
    expect(accepted.statusCode).toBe(200);
    expect(accepted.json()).toMatchObject({ canaryPercent: 10, upstreams: { held: null, tested: { canary: { endpoint: "localhost:9003" } } } });
    expect((await moved.inject({ method: "POST", url: "/v1/rollouts/fraud-model/accept-upstreams" })).statusCode).toBe(409);
  });

  it("a release under way is held; promote is refused; accepting it starts the release again from its first stage", async () => {
    const file = stateFile();
    const h = await harness({ stateFile: file, app: { upstreams: upstreams("http://127.0.0.1:9002") } });
    await createRollout(h.app, managedSpec());
    let view = await h.view();
    for (let i = 0; i < 100 && !(view.phase === "Canary" && view.stage?.name === "10%"); i++) {
      await h.round();
      view = await h.view();
    }
    expect(view).toMatchObject({ phase: "Canary", canaryPercent: 10 });
    const now = h.now();
    await h.app.close();

    const after = await harness({ stateFile: file, resume: { now, sim: h.sim }, app: { upstreams: upstreams("http://127.0.0.1:9004") } });
    view = await after.view();
    expect(view).toMatchObject({ phase: "Canary", canaryPercent: 0, shadowPercent: 0, upstreams: { held: { withdrawn: { canaryPercent: 10 } } } });
    // No stage moves while held, however good the readings.
    for (let i = 0; i < 5; i++) await after.round();
    expect(await after.view()).toMatchObject({ phase: "Canary", stage: { name: "10%" }, canaryPercent: 0 });
    const promote = await after.app.inject({ method: "POST", url: "/v1/rollouts/fraud-model/promote" });
    expect(promote.statusCode).toBe(409);
    expect(promote.json().error).toMatch(
      /^rollout fraud-model: promote refused while held: its upstreams changed since it last ran: canary \(cluster canary\)/,
    );

    const accepted = await after.app.inject({ method: "POST", url: "/v1/rollouts/fraud-model/accept-upstreams", headers: { "x-actor": "alice" } });
    expect(accepted.json()).toMatchObject({
      phase: "Pending",
      canaryPercent: 0,
      upstreams: { held: null, tested: { canary: { endpoint: "127.0.0.1:9004" } } },
    });
    const kinds = (await after.app.inject({ url: "/v1/rollouts/fraud-model/history" })).json().decisions.map((d: { kind: string }) => d.kind);
    expect(kinds.slice(-2)).toEqual(["upstreamsChanged", "upstreamsAccepted"]);
    view = await after.view();
    for (let i = 0; i < 100 && view.phase !== "Canary"; i++) {
      await after.round();
      view = await after.view();
    }
    expect(view).toMatchObject({ phase: "Canary", stage: { name: "10%" }, canaryPercent: 10 });
  });

  it("a rollout that has not begun takes the new upstreams and says so", async () => {
    const file = stateFile();
    const first = await testApp({ stateFile: file, upstreams: upstreams("http://127.0.0.1:9002"), tickIntervalMs: 0 });
    await createRollout(first, managedSpec({ name: "pending-one", match: { pathPrefix: "/p" } }));
    await first.close();
    const second = await testApp({ stateFile: file, upstreams: upstreams("http://127.0.0.1:9005"), tickIntervalMs: 0 });
    expect(second.modelroll.upstreams.heldAtStart).toEqual([]);
    expect((await second.inject({ url: "/v1/rollouts/pending-one" })).json()).toMatchObject({
      phase: "Pending",
      upstreams: {
        held: null,
        tested: { canary: { endpoint: "127.0.0.1:9005" } },
        note: "upstreams changed before the first stage (canary (cluster canary) was 127.0.0.1:9002, now 127.0.0.1:9005): the stages test what the clusters reach now",
      },
    });
  });

  it("after Succeeded: stable repointed is a note (the canary keeps its 100%); a release never recorded is held", async () => {
    // No upstreams known while it ran (as with a state file from before they were recorded).
    const file = stateFile();
    const h = await harness({ stateFile: file });
    await createRollout(h.app, managedSpec());
    let view = await h.view();
    for (let i = 0; i < 200 && view.phase !== "Succeeded"; i++) {
      await h.round();
      view = await h.view();
    }
    expect(view).toMatchObject({ phase: "Succeeded", canaryPercent: 100, upstreams: null });
    const now = h.now();
    await h.app.close();

    const unrecorded = await harness({ stateFile: file, resume: { now, sim: h.sim }, app: { upstreams: upstreams("http://127.0.0.1:9002") } });
    view = await unrecorded.view();
    expect(view).toMatchObject({ phase: "Succeeded", canaryPercent: 0, upstreams: { tested: null, held: { withdrawn: { canaryPercent: 100 } } } });
    expect(view.pending).toMatch(/^held: the upstreams this rollout was tested against were not recorded .* cannot be shown to be the one its stages tested/);
    await unrecorded.app.close();

    // Recorded from the start this time; then stable alone is repointed (how finalize begins).
    const file2 = stateFile();
    const r = await harness({ stateFile: file2, app: { upstreams: upstreams("http://127.0.0.1:9002") } });
    await createRollout(r.app, managedSpec());
    view = await r.view();
    for (let i = 0; i < 200 && view.phase !== "Succeeded"; i++) {
      await r.round();
      view = await r.view();
    }
    const then = r.now();
    await r.app.close();
    const repointed = await harness({
      stateFile: file2,
      resume: { now: then, sim: r.sim },
      app: { upstreams: { stable: "http://127.0.0.1:9002", canary: "http://127.0.0.1:9002", shadow: "http://127.0.0.1:9002" } },
    });
    expect(await repointed.view()).toMatchObject({
      phase: "Succeeded",
      canaryPercent: 100,
      upstreams: {
        held: null,
        note: "stable changed since the release: stable (cluster stable) was 127.0.0.1:9001, now 127.0.0.1:9002; no traffic reaches stable until finalize, which checks it",
      },
    });
  });

  it("reads what each cluster reaches from Envoy admin's /clusters (a DNS cluster by its host name)", () => {
    const json = {
      cluster_statuses: [
        { name: "stable", host_statuses: [{ address: { socket_address: { address: "127.0.0.1", port_value: 9101 } }, hostname: "localhost" }] },
        {
          name: "canary",
          host_statuses: [
            { address: { socket_address: { address: "10.0.0.2", port_value: 80 } } },
            { address: { socket_address: { address: "10.0.0.1", port_value: 80 } } },
          ],
        },
        { name: "empty", host_statuses: [] },
      ],
    };
    expect([...parseClusters(json)]).toEqual([
      ["stable", "localhost:9101"],
      ["canary", "10.0.0.1:80, 10.0.0.2:80"],
    ]);
  });
});
