// The WasmPlugin distributor's write discipline (filter-config/wasmplugin-distributor.ts), with a recording client
// standing in for the Kubernetes API (the real API server and istiod: test/kube/istiod-delivery.test.ts): what is
// applied (only pluginConfig.rollouts and the version annotation, by server-side apply under the controller's
// field manager), one write per turn of commits, at most one write in flight with the newest config next, failures
// retried with backoff and shown in /metrics without failing the commit, and the long-poll refused with istiod.
import { describe, expect, it } from "vitest";
import { FIELD_MANAGER, type ApplyClient } from "../../controller/src/filter-config/wasmplugin-distributor.ts";
import { within } from "../bounded.ts";
import { createRollout, metricValue, spec, testApp } from "./helpers.ts";

interface Call {
  name: string;
  body: any;
  options: Record<string, unknown>;
  resolve(): void;
  reject(error: unknown): void;
}

/** Records every apply; each stays in flight until the test resolves or rejects it (or `auto` answers it). */
class RecordingClient implements ApplyClient {
  readonly calls: Call[] = [];
  auto: "ok" | null = null;
  #arrived: Array<() => void> = [];

  patch(ref: { namespace?: string; plural: string }, name: string, body: unknown, options: Record<string, unknown>) {
    return new Promise<{ metadata: { resourceVersion?: string } }>((resolve, reject) => {
      const call: Call = {
        name: `${ref.plural}/${ref.namespace}/${name}`,
        body,
        options,
        resolve: () => resolve({ metadata: { resourceVersion: String(this.calls.length) } }),
        reject,
      };
      this.calls.push(call);
      for (const wake of this.#arrived.splice(0)) wake();
      if (this.auto === "ok") call.resolve();
    });
  }

  /** Waits until `n` applies were made. */
  async made(n: number): Promise<Call> {
    await within(
      5000,
      `apply number ${n}`,
      (async () => {
        while (this.calls.length < n) await new Promise<void>((r) => this.#arrived.push(r));
      })(),
    );
    return this.calls[n - 1] as Call;
  }
}

const weights = (call: Call) => call.body.spec.pluginConfig.rollouts.map((r: any) => `${r.name}=${r.canaryBasisPoints}`).join(" ");

async function istiodApp(client: RecordingClient, mode: "istiod" | "both" = "istiod") {
  return testApp({ configDelivery: { mode, wasmPlugin: { namespace: "ml", name: "modelroll-filter", client } } });
}

describe("WasmPlugin distributor", () => {
  it("applies only pluginConfig's rollouts and configVersion and the version annotation, server-side under its field manager", async () => {
    const client = new RecordingClient();
    client.auto = "ok";
    const app = await istiodApp(client);
    await createRollout(app, spec({ canaryPercent: 5 }));
    await app.modelroll.wasmPlugin!.settled();
    const last = client.calls.at(-1) as Call;
    expect(last.name).toBe("wasmplugins/ml/modelroll-filter");
    expect(last.options).toEqual({ type: "apply", fieldManager: FIELD_MANAGER, force: true });
    expect(Object.keys(last.body)).toEqual(["apiVersion", "kind", "metadata", "spec"]);
    expect(last.body.apiVersion).toBe("extensions.istio.io/v1alpha1");
    expect(last.body.kind).toBe("WasmPlugin");
    expect(last.body.metadata).toEqual({ name: "modelroll-filter", namespace: "ml", annotations: { "modelroll.io/config-version": "2" } });
    // Nothing of the module: url, sha256, imagePullPolicy stay with the WasmPlugin's owner.
    expect(Object.keys(last.body.spec)).toEqual(["pluginConfig"]);
    expect(Object.keys(last.body.spec.pluginConfig)).toEqual(["configVersion", "rollouts"]);
    expect(last.body.spec.pluginConfig.configVersion).toBe(2);
    // The same rollout table the long-poll serves.
    const served = (await app.inject({ url: "/v1/filter-config" })).json();
    expect(last.body.spec.pluginConfig.rollouts).toEqual(served.rollouts);
    expect(await metricValue(app, "modelroll_wasmplugin_written_version")).toBe(2);
    expect(await metricValue(app, "modelroll_wasmplugin_write_pending")).toBe(0);
  });

  it("coalesces: commits in one turn are one write; while a write is in flight only the newest follows it", async () => {
    const client = new RecordingClient();
    const app = await istiodApp(client);
    const plugin = app.modelroll.wasmPlugin!;
    const store = app.modelroll.store;
    (await client.made(1)).resolve(); // the start's config (version 1, no rollouts)
    await plugin.settled();
    // Fifty rollouts created in one synchronous turn (as a tick's commits come): one write of all fifty.
    for (let i = 0; i < 50; i++) store.create(spec({ name: `model-${i}`, match: { pathPrefix: `/m/${i}` }, canaryPercent: 1 }) as never);
    const second = await client.made(2);
    expect(second.body.spec.pluginConfig.rollouts).toHaveLength(50);
    expect(second.body.metadata.annotations["modelroll.io/config-version"]).toBe("51");
    // While it is in flight, three weight changes: none is written yet; when it ends, one write with the last.
    for (const percent of [5, 10, 25]) {
      const r = await app.inject({ method: "PUT", url: "/v1/rollouts/model-7/weight", payload: { canaryPercent: percent } });
      expect(r.statusCode).toBe(200);
    }
    await new Promise((r) => setTimeout(r, 20));
    expect(client.calls).toHaveLength(2);
    second.resolve();
    const third = await client.made(3);
    expect(weights(third)).toContain("model-7=2500");
    expect(third.body.metadata.annotations["modelroll.io/config-version"]).toBe("54");
    third.resolve();
    await plugin.settled();
    expect(client.calls).toHaveLength(3);
    expect(plugin.writtenVersion).toBe(54);
  });

  it("a failed write never fails the commit: retried with backoff, newest config, seen in /metrics", async () => {
    const client = new RecordingClient();
    const app = await istiodApp(client);
    const plugin = app.modelroll.wasmPlugin!;
    (await client.made(1)).reject(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6443"), { status: 0, reason: "Unreachable" }));
    // The API is down: the rollout is still created (in the same turn as the failure, before any retry could
    // start) and the long-poll has it.
    app.modelroll.store.create(spec({ canaryPercent: 5 }) as never);
    await new Promise((r) => setImmediate(r));
    expect((await app.inject({ url: "/v1/filter-config" })).json().version).toBe(2);
    expect(await metricValue(app, "modelroll_wasmplugin_write_failures")).toBe(1);
    expect(await metricValue(app, "modelroll_wasmplugin_write_pending")).toBe(1);
    expect(plugin.failure.error).toMatch(/ml\/modelroll-filter: the Kubernetes API is unreachable/);
    // The retry (after the backoff) writes the newest config, not the one that failed.
    const retry = await client.made(2);
    expect(retry.body.metadata.annotations["modelroll.io/config-version"]).toBe("2");
    retry.reject(Object.assign(new Error("still down"), { status: 503 }));
    const again = await client.made(3);
    again.resolve();
    await plugin.settled();
    expect(await metricValue(app, "modelroll_wasmplugin_write_failures")).toBe(0);
    const text = (await app.inject({ url: "/metrics" })).body;
    expect(text).toContain('modelroll_wasmplugin_writes_total{result="error"} 2');
    expect(text).toContain('modelroll_wasmplugin_writes_total{result="ok"} 1');
  });

  it("names a missing WasmPlugin (the apply would have to create it, and its schema wants the module)", async () => {
    const client = new RecordingClient();
    const app = await istiodApp(client);
    (await client.made(1)).reject(
      Object.assign(new Error('WasmPlugin.extensions.istio.io "modelroll-filter" is invalid'), {
        status: 422,
        reason: "Invalid",
        causes: [{ field: "spec.url", reason: "FieldValueRequired" }],
      }),
    );
    await new Promise((r) => setTimeout(r, 0));
    expect(app.modelroll.wasmPlugin!.failure.error).toBe(
      "wasmplugin ml/modelroll-filter does not exist: the controller writes only its pluginConfig; create it with its module (url, sha256) first",
    );
  });

  it("with istiod alone the filters' long-poll is refused (409) while a plain read answers; with both it is served", async () => {
    const client = new RecordingClient();
    client.auto = "ok";
    const istiod = await istiodApp(client);
    const poll = await istiod.inject({ url: "/v1/filter-config?wait=1" });
    expect(poll.statusCode).toBe(409);
    expect(poll.json().error).toMatch(/long-poll is off \(--config-delivery istiod\)/);
    expect((await istiod.inject({ url: "/v1/filter-config" })).statusCode).toBe(200);
    const both = await istiodApp(client, "both");
    const served = await both.inject({ url: "/v1/filter-config?wait=1" });
    expect(served.statusCode).toBe(200);
    expect(both.modelroll.wasmPlugin).not.toBeNull();
    const longPollOnly = await testApp();
    expect(longPollOnly.modelroll.wasmPlugin).toBeNull();
  });

  it("refuses istiod delivery without a WasmPlugin named", async () => {
    await expect(testApp({ configDelivery: { mode: "istiod" } })).rejects.toThrow(
      /--config-delivery istiod: name the WasmPlugin.*--wasmplugin NAMESPACE\/NAME/,
    );
  });
});
