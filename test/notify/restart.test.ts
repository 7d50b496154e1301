// The outbox survives a controller killed with SIGKILL. The controller runs as its own process (`npm run
// controller`) with a state file and a controller-wide target from MODELROLL_NOTIFY_TARGETS:
//   a. killed while its receiver answers 503 (events waiting for their retry): the restarted controller sends
//      them all, in order, each accepted once;
//   b. killed while a delivery is in flight (the receiver has the event and has not answered yet): the
//      restarted controller sends that event again, with the same id (at least once; receivers deduplicate on
//      the id), then the rest.
// No Envoy is needed for this: the rollout's events come from its start and from operator commands.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../../controller/src/paths.ts";
import { freePort } from "../../controller/src/net.ts";
import { eventually, Receiver } from "./receiver.ts";

const TOKEN = "rEcEiVeRtOkEn0123456789";
const dir = mkdtempSync(join(tmpdir(), "modelroll-notify-restart-"));
let hooks: Receiver;
let port: number;
let deadAdmin: number;
let child: ChildProcess | null = null;
let output = "";

async function startController(stateFile: string): Promise<string> {
  output = "";
  child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      join(repoRoot, "controller", "src", "cli", "controller.ts"),
      "--listen",
      `127.0.0.1:${port}`,
      "--state",
      stateFile,
      // Nothing listens there: the counts read as unmeasurable, which is fine for these events.
      "--envoy-admin",
      `http://127.0.0.1:${deadAdmin}`,
      "--tick-ms",
      "100",
    ],
    {
      cwd: repoRoot,
      env: { ...process.env, MODELROLL_NOTIFY_TARGETS: `webhook=${hooks.base}/hook?token=${TOKEN}`, MODELROLL_LOG_LEVEL: "warn" },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const started = child;
  started.stdout!.on("data", (c: Buffer) => (output += c.toString()));
  started.stderr!.on("data", (c: Buffer) => (output += c.toString()));
  await eventually("the controller to listen", () => output.includes("listening on") || started.exitCode !== null, 30_000);
  if (!output.includes("listening on")) throw new Error(`controller did not start:\n${output}`);
  return `http://127.0.0.1:${port}`;
}

async function kill(): Promise<void> {
  const running = child;
  if (!running || running.exitCode !== null) return;
  const exited = new Promise((resolve) => running.once("exit", resolve));
  running.kill("SIGKILL");
  await exited;
  child = null;
}

async function api(base: string, method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(base + path, { method, headers: body ? { "content-type": "application/json" } : {}, body: body ? JSON.stringify(body) : undefined });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const spec = (name: string) => ({
  name,
  match: { pathPrefix: `/${name}` },
  stickyKey: { header: "x-user-id" },
  owner: "team-fraud",
  rollbackCondition: "errors above 1%",
  stages: [10, 100],
  promotion_gates: { error_rate: { maximum: 0.01 } },
});

const deliveries = async (base: string, name: string) =>
  (await api(base, "GET", `/v1/notifications?rollout=${name}&limit=1000`)).deliveries.reverse() as Array<{
    id: string;
    type: string;
    state: string;
    attempts: number;
  }>;

/** The rollout started, then paused, resumed and rolled back by an operator: four events. */
async function fourEvents(base: string, name: string): Promise<void> {
  await api(base, "POST", "/v1/rollouts", spec(name));
  await eventually("the start", async () => (await api(base, "GET", `/v1/rollouts/${name}`)).phase === "Canary");
  for (const command of ["pause", "resume", "rollback"]) await api(base, "POST", `/v1/rollouts/${name}/${command}`, { reason: "test" });
  await eventually("four events in the outbox", async () => (await deliveries(base, name)).length === 4);
}

beforeAll(async () => {
  hooks = await Receiver.start();
  port = await freePort();
  deadAdmin = await freePort();
});
afterAll(async () => {
  await kill();
  await hooks.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("the outbox across a SIGKILL", () => {
  it("a. killed between retries: after the restart every event arrives, in order, once", { timeout: 90_000 }, async () => {
    const stateFile = join(dir, "a.db");
    hooks.received.length = 0;
    hooks.answer = () => ({ status: 503 });
    let base = await startController(stateFile);
    await fourEvents(base, "retry");
    const before = await deliveries(base, "retry");
    expect(before.map((d) => d.type)).toEqual(["rollout.started", "rollout.paused", "rollout.resumed", "rollout.rolled_back"]);
    await eventually("two failed attempts", () => hooks.received.length >= 2, 20_000);
    const pending = await deliveries(base, "retry");
    expect(pending.every((d) => d.state === "pending")).toBe(true);

    await kill();
    const triedBefore = hooks.received.length;
    hooks.answer = () => ({ status: 200 });
    base = await startController(stateFile);
    expect(output).toMatch(/resumed: 1 rollout,/);
    await eventually("every event delivered", () => hooks.accepted.length === 4, 30_000);
    // Nothing more comes: each event was sent once after the restart.
    await new Promise((r) => setTimeout(r, 1500));
    const ids = hooks.accepted.map((r) => r.body.id);
    expect(ids).toEqual(before.map((d) => d.id));
    expect(new Set(ids).size).toBe(4);
    expect(hooks.accepted.map((r) => r.headers["x-modelroll-event-id"])).toEqual(ids);
    const after = await deliveries(base, "retry");
    expect(after.map((d) => d.state)).toEqual(["sent", "sent", "sent", "sent"]);
    expect(after[0].attempts).toBe(triedBefore + 1);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain('modelroll_notifications_sent_total{format="webhook"} 4');
    console.log(
      `a. ${triedBefore} attempts (503) before the kill; after the restart ${hooks.accepted.length} events accepted, in order, none twice; the first at its attempt ${after[0].attempts}`,
    );
    // The receiver's URL (its token) is not in the controller's output, however it failed.
    expect(output).not.toContain(TOKEN);
    await kill();
  });

  it("b. killed while a delivery is in flight: that event is sent again after the restart, with the same id", { timeout: 90_000 }, async () => {
    const stateFile = join(dir, "b.db");
    hooks.received.length = 0;
    // The receiver takes the first event and holds its answer; the controller dies before it hears the 2xx.
    let held = true;
    hooks.answer = () => (held ? "hang" : { status: 200 });
    let base = await startController(stateFile);
    await fourEvents(base, "inflight");
    const events = await deliveries(base, "inflight");
    await eventually("the first event at the receiver", () => hooks.received.length === 1, 20_000);
    expect(hooks.received[0].body.id).toBe(events[0].id);

    await kill();
    held = false;
    base = await startController(stateFile);
    await eventually("every event delivered", () => hooks.accepted.length === 4, 30_000);
    await new Promise((r) => setTimeout(r, 1500));
    const seen = hooks.received.map((r) => r.body.id);
    // At least once: the first event twice (the same id both times), the others once, in order.
    expect(seen).toEqual([events[0].id, ...events.map((e) => e.id)]);
    const deduplicated = [...new Set(seen)];
    expect(deduplicated).toEqual(events.map((e) => e.id));
    console.log(
      `b. killed with event 1 at the receiver unanswered: after the restart it came again with the same id (${events[0].id}), then events 2-4; ${seen.length} requests for ${deduplicated.length} events`,
    );
    await kill();
  });
});
