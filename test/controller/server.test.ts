import { performance } from "node:perf_hooks";
import { afterEach, describe, expect, it } from "vitest";
import { startController, type RunningController } from "../../controller/src/server.ts";
import { EPOCH, spec } from "./helpers.ts";

const running: RunningController[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((c) => c.close()));
});

async function start(): Promise<RunningController> {
  const controller = await startController({ port: 0, epoch: EPOCH });
  running.push(controller);
  return controller;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (condition()) return true;
    await sleep(5);
  }
  return condition();
}

describe("startController", () => {
  it("listens on 127.0.0.1 with a free port and serves the API", async () => {
    const controller = await start();
    expect(controller.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const health = await fetch(`${controller.url}/healthz`);
    expect(await health.json()).toEqual({ status: "ok" });

    const created = await fetch(`${controller.url}/v1/rollouts`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(spec()),
    });
    expect(created.status).toBe(201);
  });

  it("releases a held poll over a real socket as soon as a rollback arrives", async () => {
    const controller = await start();
    await fetch(`${controller.url}/v1/rollouts`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(spec({ canaryPercent: 10 })),
    });
    let answeredAt = 0;
    const held = fetch(`${controller.url}/v1/filter-config?version=2&epoch=${EPOCH}&wait=30`).then((r) => {
      answeredAt = performance.now();
      return r;
    });
    expect(await waitFor(() => controller.app.modelroll.longPoll.held === 1, 2000)).toBe(true);

    const sentAt = performance.now();
    const change = await fetch(`${controller.url}/v1/rollouts/fraud-model/rollback`, { method: "POST" });
    const response = await held;
    const releaseMs = answeredAt - sentAt;
    console.log(`rollback reached a held poll over HTTP in ${releaseMs.toFixed(2)} ms`);
    expect(change.status).toBe(200);
    expect(response.status).toBe(200);
    expect((await response.json()).version).toBe(3);
    expect(releaseMs).toBeLessThan(100);
  });

  it("forgets a held poll when the client disconnects, and still closes promptly", async () => {
    const controller = await startController({ port: 0, epoch: EPOCH });
    const client = new AbortController();
    const held = fetch(`${controller.url}/v1/filter-config?version=1&epoch=${EPOCH}&wait=30`, {
      signal: client.signal,
    }).catch((error: Error) => error);
    const changes = controller.app.modelroll.longPoll;
    expect(await waitFor(() => changes.held === 1, 2000)).toBe(true);
    client.abort();
    expect(await held).toBeInstanceOf(Error);
    expect(await waitFor(() => changes.held === 0, 2000)).toBe(true);

    // The client's spare connection must not hold shutdown until its keep-alive ends (4 s in undici).
    const started = performance.now();
    await controller.close();
    expect(performance.now() - started).toBeLessThan(1500);
  });

  it("closes at once with polls still held", async () => {
    const controller = await startController({ port: 0, epoch: EPOCH });
    const held = [1, 2].map(() =>
      fetch(`${controller.url}/v1/filter-config?version=1&epoch=${EPOCH}&wait=60`).then(
        (r) => r.status,
        (error: Error) => error.message,
      ),
    );
    expect(await waitFor(() => controller.app.modelroll.longPoll.held === 2, 2000)).toBe(true);
    const started = performance.now();
    await controller.close();
    expect(performance.now() - started).toBeLessThan(1000);
    expect(await Promise.all(held)).toEqual([304, 304]);
  });

  it("reports a port in use with the address", async () => {
    const first = await start();
    const port = Number(new URL(first.url).port);
    await expect(startController({ port })).rejects.toThrow(`controller: cannot listen on 127.0.0.1:${port}`);
  });
});
