// The release lifecycle on real Envoy, as a user lives it, with short engine ticks and small stages:
//  1. v1 -> v2: promoted through its stages, then finalized by the spec's webhook (a stand-in CD system that
//     repoints the stable deployment to a v2 server), verified by the versions stable answers, archived; then
//     v2 -> v3 on the same path and name, rolled back by its gates.
//  2. A restart with different upstreams: the Succeeded v1 -> v2 rollout resumes on a stack whose stable is
//     now v2 and whose canary is v3. The controller (started before this Envoy, as `npm run controller` may be)
//     sees the canary cluster's new endpoint in Envoy admin's /clusters and holds the rollout; the filter stops
//     sending to a canary answering another model at its first wrong answer; finalize then verifies stable.
import { createServer, type Server } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startModelServer } from "../../controller/src/demo/model-server.ts";
import { api, decisionsOf, managedSpec, phaseOf, send, sendMany, startStack, waitFor, type Reply, type Stack } from "./harness.ts";

const STAGES = [
  { canaryPercent: 20, minDurationSeconds: 1, minRequests: 40, deadlineSeconds: 120 },
  { canaryPercent: 100, minDurationSeconds: 1, minRequests: 40, deadlineSeconds: 120 },
];
const TICK = { tickIntervalMs: 250 };
const models = (stable: string, canary: string) => ({ stable, canary, versionField: "model_version" });
const dir = mkdtempSync(join(tmpdir(), "modelroll-lifecycle-"));
const stacks: Stack[] = [];
let hookServer: Server | null = null;

afterAll(async () => {
  await new Promise<void>((resolve) => (hookServer ? hookServer.close(() => resolve()) : resolve()));
  for (const stack of stacks) await stack.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Traffic in rounds of 60 (new users each round) until the rollout reaches one of `phases`. */
async function drive(stack: Stack, name: string, phases: string[], timeoutMs = 60_000): Promise<{ phase: string; replies: Reply[] }> {
  const ctl = stack.controller!.url;
  const replies: Reply[] = [];
  const started = performance.now();
  let phase = await phaseOf(ctl, name);
  while (!phases.includes(phase)) {
    if (performance.now() - started > timeoutMs) throw new Error(`${name}: still ${phase} after ${timeoutMs} ms (waiting for ${phases.join("/")})`);
    replies.push(...(await sendMany(`${stack.dataUrl}/${name}/score`, 60, (i) => ({ "x-user-id": `${name}-${replies.length + i}` }), 8)));
    phase = await phaseOf(ctl, name);
  }
  return { phase, replies };
}

const count = (replies: Reply[], version: string) => replies.filter((r) => r.modelVersion === version).length;

describe("the release lifecycle on real Envoy", () => {
  it("v1 -> v2 promoted and finalized through the webhook (stable repointed to v2, verified), then v3 rolled back", async () => {
    const stack = await startStack({ controller: TICK });
    stacks.push(stack);
    const ctl = stack.controller!.url;
    const stablePort = stack.stable.port;

    // The CD system: on the webhook, the stable deployment is replaced by a v2 server on the same address.
    const hooks: Array<Record<string, unknown>> = [];
    hookServer = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", async () => {
        hooks.push(JSON.parse(Buffer.concat(chunks).toString("utf8")));
        await stack.stable.close();
        stack.stable = await startModelServer({ version: "v2", port: stablePort });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => hookServer!.listen(0, "127.0.0.1", resolve));
    const hookUrl = `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}/deploy`;

    const spec = managedSpec("cycle", "canary error rate above 1%", {
      models: models("v1", "v2"),
      stages: STAGES,
      promotion_gates: { error_rate: { maximum: 0.01 } },
      finalize: { webhook: { url: hookUrl }, verifyPercent: 20, verifyAnswers: 20, deadlineSeconds: 60 },
    });
    const created = await api(ctl, "POST", "/v1/rollouts", spec);
    expect(created.status, JSON.stringify(created.json)).toBe(201);

    // Through its stages to Succeeded, then the webhook, the verification and the archive.
    const release = await drive(stack, "cycle", ["Succeeded", "Finalizing", "RolledBack", "Failed"]);
    expect(release.phase).not.toMatch(/RolledBack|Failed/);
    expect(count(release.replies, "v2")).toBeGreaterThan(0);
    await waitFor(
      "the rollout to be archived",
      async () => {
        await sendMany(`${stack.dataUrl}/cycle/score`, 40, (i) => ({ "x-user-id": `fin-${Math.random()}-${i}` }), 8);
        return (await api(ctl, "GET", "/v1/rollouts/cycle")).status === 404;
      },
      60_000,
      50,
    );
    expect(hooks).toHaveLength(1);
    expect(hooks[0]).toMatchObject({ event: "rollout.succeeded", rollout: "cycle", action: "make the stable deployment serve v2 (it serves v1)" });

    const archive = (await api(ctl, "GET", "/v1/rollouts?archived=true")).json.rollouts;
    expect(archive).toHaveLength(1);
    expect(archive[0]).toMatchObject({ name: "cycle", phase: "Finalized", canaryPercent: 0 });
    expect(archive[0].archived.reason).toMatch(/^finalized: stable answered v2 \d+ times in a row/);
    const kinds = (await api(ctl, "GET", `/v1/archive/${archive[0].archived.id}/history`)).json.decisions
      .map((d: { kind: string }) => d.kind)
      .filter((k: string) => k !== "held");
    expect(kinds).toEqual(["started", "advanced", "succeeded", "finalizeRequested", "finalized"]);

    // Everything now reaches stable, which is v2; the path no longer belongs to any rollout.
    const after = await sendMany(`${stack.dataUrl}/cycle/score`, 60, (i) => ({ "x-user-id": `after-${i}` }), 8);
    expect(after.every((r) => r.status === 200 && r.modelVersion === "v2" && r.variant === null)).toBe(true);

    // The next release on the same path and name: v2 -> v3, where v3 fails 30% of its answers.
    await stack.canary.close();
    stack.canary = await startModelServer({ version: "v3", port: stack.canary.port, behavior: { errorRate: 0.3 } });
    const next = await api(ctl, "POST", "/v1/rollouts", { ...spec, models: models("v2", "v3"), finalize: undefined });
    expect(next.status, JSON.stringify(next.json)).toBe(201);
    expect(next.json).toMatchObject({ phase: "Pending", canaryPercent: 0 });
    const bad = await drive(stack, "cycle", ["RolledBack", "Failed", "Succeeded"]);
    expect(bad.phase).toBe("RolledBack");
    const last = (await decisionsOf(ctl, "cycle")).at(-1)!;
    expect(last.reason).toMatch(/^canary worse overall: error rate/);
    expect((await decisionsOf(ctl, "cycle")).some((d) => d.kind === "finalized")).toBe(false);
    await waitFor(
      "all traffic on v2",
      async () =>
        (await sendMany(`${stack.dataUrl}/cycle/score`, 40, (i) => ({ "x-user-id": `v3-after-${i}` }), 8)).every(
          (r) => r.variant === "stable" && r.modelVersion === "v2",
        ),
      5000,
      20,
    );
    const report = (await api(ctl, "GET", "/v1/rollouts/cycle/report")).json;
    expect(report).toMatchObject({ outcome: "rolled back", models: { stable: "v2", canary: "v3" }, archived: null });
    console.log(`v2 -> v3: ${bad.phase} after ${bad.replies.length} requests (${count(bad.replies, "v3")} answered by v3): ${last.reason.slice(0, 200)}`);
  });

  it("after a restart with different upstreams, a Succeeded rollout whose canary now answers another model goes to stable and says why", async () => {
    const stateFile = join(dir, "restart.db");
    const before = await startStack({ controller: { ...TICK, stateFile } });
    stacks.push(before);
    const spec = managedSpec("moved", "canary error rate above 1%", {
      models: models("v1", "v2"),
      stages: STAGES,
      promotion_gates: { error_rate: { maximum: 0.01 } },
    });
    expect((await api(before.controller!.url, "POST", "/v1/rollouts", spec)).status).toBe(201);
    expect((await drive(before, "moved", ["Succeeded", "RolledBack", "Failed"])).phase).toBe("Succeeded");
    expect((await send(`${before.dataUrl}/moved/score`, { "x-user-id": "u" })).modelVersion).toBe("v2");
    await before.stop();
    stacks.splice(stacks.indexOf(before), 1);

    // The next day: stable is the winner (v2), the canary upstream the next model (v3).
    const after = await startStack({ controller: { ...TICK, stateFile }, versions: { stable: "v2", canary: "v3" } });
    stacks.push(after);
    const ctl = after.controller!.url;
    // Resumed Succeeded; its canary share is 0 already when the controller read /clusters before this request.
    expect((await api(ctl, "GET", "/v1/rollouts/moved")).json).toMatchObject({ phase: "Succeeded" });
    // From the first request the filter routes with the resumed config (a variant header), one at a time.
    const replies: Reply[] = [];
    await waitFor(
      "the filter's config",
      async () => {
        replies.push(await send(`${after.dataUrl}/moved/score`, { "x-user-id": `r${replies.length}` }));
        return replies.at(-1)!.variant !== null;
      },
      15_000,
      20,
    );
    const routed = () => replies.filter((r) => r.variant !== null);
    for (let i = 0; i < 40; i++) replies.push(await send(`${after.dataUrl}/moved/score`, { "x-user-id": `r${replies.length}` }));
    const view = await waitFor(
      "the engine to take the canary's share away",
      async () => (await api(ctl, "GET", "/v1/rollouts/moved")).json.canaryPercent === 0,
      10_000,
      50,
    ).then(async () => (await api(ctl, "GET", "/v1/rollouts/moved")).json);
    const wrong = count(routed(), "v3");
    console.log(
      `restart with stable=v2, canary=v3: ${wrong} of ${routed().length} routed requests answered by v3, the rest by v2; ${view.pending.slice(0, 260)}`,
    );
    // Whichever comes first, the controller's reading of /clusters or the filter's identity fail-safe (each Envoy
    // worker, 2, lets at most its first wrong canary answer through; the requests here are sequential).
    expect(wrong).toBeLessThanOrEqual(2);
    expect(count(routed(), "v2")).toBe(routed().length - wrong);
    expect(view.phase).toBe("Succeeded");
    expect(view.pending).toMatch(
      /^held: its upstreams changed since it last ran: stable \(cluster stable\) was 127\.0\.0\.1:\d+ \(model v1\), now 127\.0\.0\.1:\d+ \(model v1\); canary \(cluster canary\) was 127\.0\.0\.1:\d+ \(model v2\), now 127\.0\.0\.1:\d+ \(model v2\)/,
    );
    expect(view.upstreams).toMatchObject({ held: { changes: [{ variant: "stable" }, { variant: "canary" }] }, tested: { source: "Envoy admin /clusters" } });
    const later = await sendMany(`${after.dataUrl}/moved/score`, 40, (i) => ({ "x-user-id": `later-${i}` }), 8);
    expect(later.every((r) => r.modelVersion === "v2")).toBe(true);

    // Stable already serves v2: finalize verifies it with all traffic on stable, and archives the rollout.
    const asked = await api(ctl, "POST", "/v1/rollouts/moved/finalize", {});
    expect(asked.json).toMatchObject({ phase: "Finalizing", canaryPercent: 0 });
    await waitFor(
      "finalize to be verified",
      async () => {
        await sendMany(`${after.dataUrl}/moved/score`, 30, (i) => ({ "x-user-id": `fin-${Math.random()}-${i}` }), 8);
        return (await api(ctl, "GET", "/v1/rollouts/moved")).status === 404;
      },
      30_000,
      50,
    );
    const archived = (await api(ctl, "GET", "/v1/rollouts?archived=true&name=moved")).json.rollouts;
    expect(archived.at(-1)).toMatchObject({ phase: "Finalized" });
  });
});
