// Many models behind one proxy: one real Envoy rendered from a models list (as `npm start -- --models` does),
// two models each with its own stable, canary and shadow servers, two engine-managed rollouts naming their
// clusters. fraud-model's canary turns bad and is rolled back while churn-model's is promoted; every answer
// names the server that gave it (model_version), so the test checks that neither model's traffic ever
// reached the other's canary (or shadow), in any phase.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseModelsFile } from "../../controller/src/cli/models-file.ts";
import { startModelServer, type ModelServer } from "../../controller/src/demo/model-server.ts";
import { modelClusters, renderModelsBootstrap } from "../../controller/src/envoy/models-bootstrap.ts";
import { startEnvoy, validateEnvoyConfig, type EnvoyProcess } from "../../controller/src/envoy/process.ts";
import { startController, type RunningController } from "../../controller/src/server.ts";
import { api, decisionsOf, freePort, managedSpec, phaseOf, sendMany, waitFor, type Reply } from "./harness.ts";

const MODELS = ["fraud-model", "churn-model"] as const;
type Model = (typeof MODELS)[number];
const VERSIONS: Record<Model, { stable: string; canary: string; shadow: string }> = {
  "fraud-model": { stable: "fraud-v1", canary: "fraud-v2", shadow: "fraud-v3" },
  "churn-model": { stable: "churn-v1", canary: "churn-v2", shadow: "churn-v3" },
};
const prefix = (m: Model) => `/v1/models/${m}`;

const servers = {} as Record<Model, Record<"stable" | "canary" | "shadow", ModelServer>>;
let envoy: EnvoyProcess;
let controller: RunningController;
let dataUrl: string;

beforeAll(async () => {
  for (const m of MODELS) {
    servers[m] = {
      stable: await startModelServer({ version: VERSIONS[m].stable }),
      canary: await startModelServer({ version: VERSIONS[m].canary }),
      shadow: await startModelServer({ version: VERSIONS[m].shadow }),
    };
  }
  // The models file as a user writes it.
  const yaml = `models:\n${MODELS.map((m) => `  - name: ${m}\n    pathPrefix: ${prefix(m)}\n    stable: ${servers[m].stable.url}\n    canary: ${servers[m].canary.url}\n    shadow: ${servers[m].shadow.url}\n`).join("")}`;
  const models = parseModelsFile(yaml, "models.yaml");
  const [controllerPort, listen, admin] = [await freePort(), await freePort(), await freePort()];
  controller = await startController({ port: controllerPort, tickIntervalMs: 250, envoyAdminUrls: [`http://127.0.0.1:${admin}`] });
  const bootstrapYaml = renderModelsBootstrap({
    listen: { host: "127.0.0.1", port: listen },
    admin: { host: "127.0.0.1", port: admin },
    controller: { host: "127.0.0.1", port: controllerPort },
    models,
  });
  const dir = mkdtempSync(join(tmpdir(), "modelroll-models-"));
  writeFileSync(join(dir, "envoy.yaml"), bootstrapYaml);
  const validated = validateEnvoyConfig(join(dir, "envoy.yaml"));
  expect(validated.ok, validated.output).toBe(true);
  envoy = await startEnvoy({ bootstrapYaml, adminPort: admin, concurrency: 2 });
  dataUrl = `http://127.0.0.1:${listen}`;
});

afterAll(async () => {
  await envoy?.stop();
  await controller?.close();
  for (const m of MODELS) for (const s of Object.values(servers[m] ?? {})) await s.close();
});

const ctl = () => controller.url;

function rolloutSpec(m: Model): Record<string, unknown> & { name: string } {
  return {
    ...managedSpec(m, "error rate above 5%", {
      stages: [
        { canaryPercent: 30, shadowPercent: 50, minDurationSeconds: 2, minRequests: 60, deadlineSeconds: 120 },
        { canaryPercent: 100, minDurationSeconds: 1, minRequests: 30, deadlineSeconds: 120 },
      ],
      promotion_gates: { error_rate: { maximum: 0.05 } },
    }),
    match: { pathPrefix: prefix(m) },
    clusters: modelClusters(m),
    shadow: { percent: 50 },
  };
}

/** Which model's server answered: its version says the server. */
function answeredBy(reply: Reply): { model: Model; variant: "stable" | "canary" | "shadow" } | null {
  for (const m of MODELS) for (const v of ["stable", "canary", "shadow"] as const) if (reply.modelVersion === VERSIONS[m][v]) return { model: m, variant: v };
  return null;
}

describe("two models behind one Envoy", () => {
  it("the bootstrap routes each model's prefix and variant to its own clusters", () => {
    // Rendered routes: canary header first, longest prefix first; three clusters per model plus the controller's.
    const yaml = renderModelsBootstrap({
      listen: { host: "127.0.0.1", port: 1 },
      admin: { host: "127.0.0.1", port: 2 },
      controller: { host: "127.0.0.1", port: 3 },
      models: [
        { name: "a", pathPrefix: "/m/a", stable: { host: "127.0.0.1", port: 11 }, canary: { host: "127.0.0.1", port: 12 } },
        { name: "a2", pathPrefix: "/m/a-2", stable: { host: "127.0.0.1", port: 21 }, canary: { host: "127.0.0.1", port: 22 } },
      ],
    });
    const routes = [...yaml.matchAll(/cluster: (\S+)/g)].map((m) => m[1]);
    expect(routes.slice(0, 4)).toEqual(["a2-canary", "a2-stable", "a-canary", "a-stable"]);
    expect([...yaml.matchAll(/- name: (\S+)\n\s+type: STATIC/g)].map((m) => m[1])).toEqual([
      "a-stable",
      "a-canary",
      "a-shadow",
      "a2-stable",
      "a2-canary",
      "a2-shadow",
      "modelroll_controller",
    ]);
  });

  it("one rolled back while the other promotes; neither sees the other's canary", { timeout: 120_000 }, async () => {
    for (const m of MODELS) {
      const created = await api(ctl(), "POST", "/v1/rollouts", rolloutSpec(m));
      expect(created.status, JSON.stringify(created.json)).toBe(201);
      expect(created.json.spec.clusters).toEqual(modelClusters(m));
      expect(created.json.spec.shadow.cluster).toBe(`${m}-shadow`);
    }
    const filterConfig = (await api(ctl(), "GET", "/v1/filter-config")).json;
    expect(
      filterConfig.rollouts.map((r: { name: string; shadow: { cluster: string }; output: { guardCluster: string } }) => [
        r.name,
        r.shadow.cluster,
        r.output.guardCluster,
      ]),
    ).toEqual([
      ["churn-model", "churn-model-shadow", "churn-model-stable"],
      ["fraud-model", "fraud-model-shadow", "fraud-model-stable"],
    ]);
    await waitFor(
      "both rollouts in their first canary stage",
      async () => (await Promise.all(MODELS.map((m) => phaseOf(ctl(), m)))).every((p) => p === "Canary"),
      15_000,
      50,
    );
    // fraud-model's canary now fails a quarter of its answers.
    await fetch(`${servers["fraud-model"].canary.url}/__demo/behavior`, { method: "PUT", body: JSON.stringify({ errorRate: 0.25 }) });

    const seen: Record<Model, Record<string, number>> = { "fraud-model": {}, "churn-model": {} };
    const wrong: string[] = [];
    const started = performance.now();
    let sent = 0;
    const done = async () => (await phaseOf(ctl(), "fraud-model")) === "RolledBack" && ["Succeeded", "Baking"].includes(await phaseOf(ctl(), "churn-model"));
    while (!(await done()) && performance.now() - started < 60_000) {
      const replies = await sendMany(
        (i) => `${dataUrl}${prefix(MODELS[i % 2])}:predict`,
        200,
        (i) => ({ "x-user-id": `user-${sent + i}` }),
        16,
      );
      replies.forEach((reply, i) => {
        const model = MODELS[i % 2];
        const by = answeredBy(reply);
        const key = by ? `${by.model} ${by.variant}` : `status ${reply.status}`;
        seen[model][key] = (seen[model][key] ?? 0) + 1;
        // An answer from a server: always this model's, and the variant the filter said it chose.
        if (by && (by.model !== model || by.variant !== reply.variant)) wrong.push(`${model} request answered by ${key} (filter said ${reply.variant})`);
      });
      sent += replies.length;
    }
    const phases = Object.fromEntries(await Promise.all(MODELS.map(async (m) => [m, await phaseOf(ctl(), m)])));
    const mirrored = Object.fromEntries(MODELS.map((m) => [m, { shadow: servers[m].shadow.mirrored(), canaryServed: servers[m].canary.served() }]));
    const rollback = (await decisionsOf(ctl(), "fraud-model")).find((d) => d.kind === "rolledBack");
    console.log(
      `two models, ${sent} requests: phases ${JSON.stringify(phases)}; answered by ${JSON.stringify(seen)}; mirrored ${JSON.stringify(mirrored)}; fraud rollback: ${rollback?.reason}`,
    );
    expect(wrong).toEqual([]);
    expect(phases["fraud-model"]).toBe("RolledBack");
    expect(["Succeeded", "Baking"]).toContain(phases["churn-model"]);
    // Each model's canary answered its own requests, and each shadow got only its own model's mirrored requests.
    for (const m of MODELS) {
      expect(seen[m][`${m} canary`]).toBeGreaterThan(0);
      expect(seen[m][`${m} stable`]).toBeGreaterThan(0);
      expect(servers[m].shadow.mirrored()).toBeGreaterThan(0);
      expect(servers[m].shadow.served()).toBe(servers[m].shadow.mirrored());
      expect(servers[m].shadow.lastMirrored()!.url.startsWith(prefix(m))).toBe(true);
    }
    expect(rollback!.reason).toContain("error rate");

    // After the rollback: fraud-model all stable, churn-model still on its canary.
    const after = await sendMany(
      (i) => `${dataUrl}${prefix(MODELS[i % 2])}:predict`,
      100,
      (i) => ({ "x-user-id": `after-${i}` }),
      8,
    );
    const fraudAfter = after.filter((_, i) => i % 2 === 0).map((r) => answeredBy(r));
    const churnAfter = after.filter((_, i) => i % 2 === 1).map((r) => answeredBy(r));
    expect(fraudAfter.every((b) => b?.model === "fraud-model" && b.variant === "stable")).toBe(true);
    expect(churnAfter.every((b) => b?.model === "churn-model")).toBe(true);
    expect(churnAfter.some((b) => b?.variant === "canary")).toBe(true);
    // A path under no model's prefix is no model's: Envoy's 404.
    expect((await sendMany(`${dataUrl}/v1/models/other:predict`, 1, () => ({})))[0].status).toBe(404);
  });
});
