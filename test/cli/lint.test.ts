// `modelroll lint` runs the controller's own validation offline: for the same spec, its error list is the
// API's 400 details, pointer for pointer and reason for reason (one function, validateRolloutSpec, behind both).
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startController, type RunningController } from "../../controller/src/server.ts";
import { cli, runCliProcess } from "./helpers.ts";

let dir: string;
let controller: RunningController;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "modelroll-lint-"));
  controller = await startController({ tickIntervalMs: 0, logger: false });
});
afterAll(async () => {
  await controller?.close();
  await rm(dir, { recursive: true, force: true });
});

const base = `name: fraud-model
match: { pathPrefix: /v1/predict }
stickyKey: { header: x-user-id }
`;
const managed = `${base}owner: team-fraud
rollbackCondition: errors above 1%
stages: [5, 50, 100]
promotion_gates: { error_rate: { maximum: 0.01 } }
`;

// Each is wrong in a different layer: the schema, the engine part, segments, the output schema, the policy, or several.
const BROKEN: Record<string, string> = {
  "schema.yaml": `name: Fraud.Model
match: { pathPrefix: no-slash }
stickyKey: { header: X-User }
canaryPrecent: 5
canaryPercent: 5.555
`,
  "schema-and-engine.yaml": `name: fraud-model
match: { pathPrefix: /v1/predict }
stickyKey: {}
stages: [50, 5]
promotion_gates: { error_rate: { maximum: "1%" } }
`,
  "engine.yaml": `${base}owner: ""
stages: [shadow, 5, 100]
changeKind: major
canaryPercent: 10
promotion_gates: { latency_p95_ms: { maximum_regression_percent: -3 } }
`,
  "policy.yaml": `${base}owner: team-fraud
rollbackCondition: errors above 1%
changeKind: major
impact: high
stages: [5, 100]
`,
  "segments.yaml": `${base}segments:
  - { name: tier, header: x-tier, values: [free, other] }
  - { name: tier, requestSizeBytes: [1024, 512] }
`,
  "output.yaml": `${base}output:
  guard: true
`,
  "output-schema.yaml": `${managed}output:
  schema: { type: object, properties: { label: { type: string, pattern: "^a" } } }
`,
  // A 100% limit (maximum: 1 meant as 1%) can never fail: refused, with why.
  "limits.yaml": `${base}owner: team-fraud
rollbackCondition: errors above 1%
stages: [5, 100]
promotion_gates: { error_rate: { maximum: 1, maximum_increase: 0.02 } }
`,
  "not-an-object.yaml": `- just
- a list
`,
};

async function apiErrors(text: string): Promise<{ status: number; details: unknown }> {
  const res = await fetch(`${controller.url}/v1/rollouts`, { method: "POST", headers: { "content-type": "application/yaml" }, body: text });
  const body = await res.json();
  return { status: res.status, details: body.details };
}

describe("modelroll lint", () => {
  it("accepts valid manual and managed specs (exit 0) and says what they are", async () => {
    await writeFile(join(dir, "manual.yaml"), `${base}canaryPercent: 5\n`);
    await writeFile(
      join(dir, "managed.json"),
      JSON.stringify({ name: "m", match: { pathPrefix: "/m" }, stickyKey: { header: "x-user-id" }, owner: "o", rollbackCondition: "r", stages: [5, 100] }),
    );
    const manual = await cli(["lint", "-f", join(dir, "manual.yaml")]);
    expect(manual).toEqual({ code: 0, stdout: `${join(dir, "manual.yaml")}: valid (manual rollout fraud-model)\n`, stderr: "" });
    const json = await cli(["lint", "-f", join(dir, "managed.json"), "-o", "json"]);
    expect(json.code).toBe(0);
    // Valid, but it has no gates: a warning, in lint and in the API's answer alike.
    const noGates = {
      path: "/promotion_gates",
      reason:
        "no gates: every stage promotes on its minimum duration and requests alone, and nothing rolls the rollout back on its own; add one, e.g. error_rate: { maximum: 0.01 } (1%)",
    };
    expect(JSON.parse(json.stdout)).toEqual({ file: join(dir, "managed.json"), valid: true, rollout: "m", errors: [], warnings: [noGates] });
    const text = await cli(["lint", "-f", join(dir, "managed.json")]);
    expect(text.stdout).toBe(
      `${join(dir, "managed.json")}: warning /promotion_gates ${noGates.reason}\n${join(dir, "managed.json")}: valid (engine-managed rollout m)\n`,
    );
    const created = await fetch(`${controller.url}/v1/rollouts`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: await readFile(join(dir, "managed.json")),
    });
    expect(created.status).toBe(201);
    expect((await created.json()).warnings).toEqual([noGates]);
    expect((await fetch(`${controller.url}/v1/rollouts/m`, { method: "DELETE" })).status).toBe(204);
    // The API takes both as they are.
    expect((await apiErrors(`${base}canaryPercent: 5\n`)).status).toBe(201);
  });

  it("lists exactly the API's 400 details for every broken spec, and exits 1", async () => {
    for (const [file, text] of Object.entries(BROKEN)) {
      await writeFile(join(dir, file), text);
      const api = await apiErrors(text);
      expect(api.status, file).toBe(400);
      const lint = await cli(["lint", "-f", join(dir, file), "-o", "json"]);
      expect(lint.code, file).toBe(1);
      const listed = JSON.parse(lint.stdout);
      expect(listed.valid).toBe(false);
      expect(listed.errors, file).toEqual(api.details);
      expect((api.details as unknown[]).length, file).toBeGreaterThan(0);
    }
    expect((await apiErrors(BROKEN["limits.yaml"] ?? "")).details).toEqual([
      {
        path: "/promotion_gates/error_rate/maximum",
        reason: "must be below 1: rates are fractions (0.01 is 1%), and maximum 1 (100%) can never fail, so the gate would protect nothing",
      },
    ]);
  });

  it("prints every error as FILE: POINTER REASON in the table form", async () => {
    const file = join(dir, "schema-and-engine.yaml");
    await writeFile(file, BROKEN["schema-and-engine.yaml"]);
    const { code, stdout } = await cli(["lint", "-f", file]);
    expect(code).toBe(1);
    const api = (await apiErrors(BROKEN["schema-and-engine.yaml"])).details as Array<{ path: string; reason: string }>;
    const lines = stdout.trimEnd().split("\n");
    expect(lines.slice(0, -1)).toEqual(api.map((d) => `${file}: ${d.path || "(root)"} ${d.reason}`));
    expect(lines.at(-1)).toBe(`${file}: ${api.length} errors`);
    // Some of each kind: the schema's and the engine's, in one list.
    expect(stdout).toContain("/stickyKey/header is required");
    expect(stdout).toContain("/stages/1");
  });

  it("reads stdin with -f -, and says why a file cannot be used (exit 3)", async () => {
    const fromStdin = await cli(["lint", "-f", "-"], { stdin: BROKEN["segments.yaml"] });
    expect(fromStdin.code).toBe(1);
    expect(fromStdin.stdout).toContain("stdin: /segments/1/name duplicate dimension 'tier'");

    const missing = await cli(["lint", "-f", join(dir, "nope.yaml")]);
    expect(missing).toEqual({ code: 3, stdout: "", stderr: `modelroll: ${join(dir, "nope.yaml")}: cannot read: ENOENT\n` });
    await writeFile(join(dir, "bad-syntax.yaml"), "name: [unclosed\n");
    const syntax = await cli(["lint", "-f", join(dir, "bad-syntax.yaml")]);
    expect(syntax.code).toBe(3);
    expect(syntax.stderr).toMatch(/^modelroll: .*bad-syntax\.yaml: YAML\/JSON syntax error at line \d+, column \d+: /);
    expect(syntax.stderr.trimEnd().split("\n")).toHaveLength(1);
    await writeFile(join(dir, "two.yaml"), `${base}---\n${base}`);
    expect((await cli(["lint", "-f", join(dir, "two.yaml")])).stderr).toContain("2 documents; give one rollout spec per file");
  });

  it("works as the real command with no controller anywhere (a pre-commit hook)", async () => {
    const good = join(dir, "hook-good.yaml");
    const bad = join(dir, "hook-bad.yaml");
    await writeFile(good, managed);
    await writeFile(bad, BROKEN["engine.yaml"]);
    // A server that does not exist: lint never asks it.
    const env = { MODELROLL_SERVER: "http://127.0.0.1:9" };
    const ok = await runCliProcess(["lint", "-f", good], env);
    expect(ok.code, ok.stderr).toBe(0);
    const failed = await runCliProcess(["lint", "-f", bad], env);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toContain(`${bad}: /canaryPercent must be 0 or absent for a rollout managed by the engine`);
  });
});
