// Hostile bodies sent to the real controller process (issue 18): each is refused with a 400 that says why, sent
// twice, and the process is alive and serving after every one. A nested-bracket YAML body of 2 KB used to end
// the process with a V8 fatal error in the yaml package; no exception handler can catch that, so only a real
// process shows it. Needs `npm run build`.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_LISTED_ERRORS } from "../../controller/src/errors.ts";
import { TEXT_LIMITS } from "../../controller/src/structured-text.ts";
import { spec } from "./helpers.ts";
import { startRealController, type RealController } from "./real-controller.ts";

let controller: RealController;
beforeAll(async () => {
  controller = await startRealController();
}, 60_000);
afterAll(async () => {
  await controller?.stop();
});

async function post(
  body: string | Uint8Array,
  type: string,
  path = "/v1/rollouts",
): Promise<{ status: number; text: string; json: () => { error: string; details?: Array<{ path: string; reason: string }> } }> {
  const response = await fetch(`${controller.url}${path}`, {
    method: "POST",
    headers: { "content-type": type },
    body: typeof body === "string" ? body : new Blob([Uint8Array.from(body)]),
  });
  const text = await response.text();
  return { status: response.status, text, json: () => JSON.parse(text) };
}

/** The controller answers a normal read: the process lived through what came before. */
async function expectServing(): Promise<void> {
  expect(controller.alive(), controller.output()).toBe(true);
  const health = await fetch(`${controller.url}/healthz`);
  expect(health.status).toBe(200);
}

const nested = (depth: number) => "[".repeat(depth) + "]".repeat(depth);

describe("hostile bodies to the real controller process", () => {
  const deep: Array<[string, string, string]> = [
    ["YAML flow nesting 1,000", "application/yaml", nested(1000)],
    ["YAML flow nesting 100,000", "application/yaml", nested(100_000)],
    ["YAML flow maps nested 1,000", "application/yaml", `${"{a: ".repeat(1000)}1${"}".repeat(1000)}`],
    ["YAML block sequences nested on one line, 1,000", "application/yaml", `${"- ".repeat(1000)}1`],
    ["YAML block maps indented 100 levels", "application/yaml", Array.from({ length: 100 }, (_, i) => `${" ".repeat(i)}k:`).join("\n")],
    ["JSON nesting 100,000", "application/json", nested(100_000)],
    ["JSON objects nested 1,000 inside a spec", "application/json", JSON.stringify(spec()).replace(/}$/, `,"x":${'{"a":'.repeat(1000)}1${"}".repeat(1000)}}`)],
  ];
  for (const [what, type, body] of deep) {
    it(`${what}: 400 naming the nesting limit, twice, and the process lives`, async () => {
      for (let round = 0; round < 2; round++) {
        const answer = await post(body, type);
        expect(answer.status, answer.text).toBe(400);
        expect(answer.json().error).toContain(`nesting deeper than ${TEXT_LIMITS.maxDepth} levels`);
        await expectServing();
      }
    });
  }

  it("a 1 MiB body of 96,000 unknown keys gets a small 400 naming the entries limit", async () => {
    const keys: Record<string, number> = {};
    for (let i = 0; i < 96_000; i++) keys[`u${i.toString(36)}`] = 1;
    const body = JSON.stringify({ ...spec(), ...keys });
    expect(body.length).toBeLessThan(1_048_576);
    expect(body.length).toBeGreaterThan(900_000);
    for (let round = 0; round < 2; round++) {
      const answer = await post(body, "application/json");
      expect(answer.status).toBe(400);
      expect(answer.text.length).toBeLessThan(1000);
      expect(answer.json().error).toContain(`a collection of 96003 entries (at most ${TEXT_LIMITS.maxEntries}) at (root)`);
      await expectServing();
    }
  });

  it("900 unknown keys (within the entries limit): the first errors listed, then how many more", async () => {
    const keys = Object.fromEntries(Array.from({ length: 900 }, (_, i) => [`unknown${i}`, 1]));
    for (const [type, body] of [
      ["application/json", JSON.stringify({ ...spec(), ...keys })],
      [
        "application/yaml",
        Object.entries({ ...spec(), ...keys })
          .map(([k, v]) => `${k}: ${JSON.stringify(v)}`)
          .join("\n"),
      ],
    ] as const) {
      const answer = await post(body, type);
      expect(answer.status, answer.text).toBe(400);
      const { error, details } = answer.json();
      expect(details).toHaveLength(MAX_LISTED_ERRORS + 1);
      expect(details?.[0]).toMatchObject({ path: "/unknown0", reason: expect.stringContaining("is not a known field") });
      expect(details?.at(-1)).toEqual({ path: "", reason: `and ${900 - MAX_LISTED_ERRORS} more errors, not listed` });
      expect(error).toMatch(/; and 880 more errors, not listed$/);
      expect(answer.text.length).toBeLessThan(20_000);
    }
    await expectServing();
  });

  it("a YAML alias bomb is a 400 about aliases, not a 500", async () => {
    const bomb = [
      "a: &a [x, x, x, x, x, x, x, x, x]",
      ...["b", "c", "d", "e", "f"].map((k, i) => `${k}: &${k} [${Array(9).fill(`*${"abcde"[i]}`).join(", ")}]`),
    ].join("\n");
    for (let round = 0; round < 2; round++) {
      const answer = await post(bomb, "application/yaml");
      expect(answer.status, answer.text).toBe(400);
      expect(answer.json().error).toContain("aliases expand to too many values");
    }
    await expectServing();
  });

  it("invalid UTF-8 in match.pathPrefix is a 400 naming the field, in JSON and in YAML, and nothing is created", async () => {
    const bad = (before: string, after: string) => Buffer.concat([Buffer.from(before), Buffer.from([0xc3, 0x28]), Buffer.from(after)]);
    const bodies: Array<[string, Buffer]> = [
      ["application/json", bad('{"name":"utf8-model","match":{"pathPrefix":"/v1/ut', '"},"stickyKey":{"header":"x-user-id"}}')],
      ["application/yaml", bad("name: utf8-model\nmatch:\n  pathPrefix: /v1/ut", "\nstickyKey:\n  header: x-user-id\n")],
    ];
    for (const [type, body] of bodies) {
      for (let round = 0; round < 2; round++) {
        const answer = await post(body, type);
        expect(answer.status, answer.text).toBe(400);
        expect(answer.json().error).toMatch(/invalid UTF-8 in \/match\/pathPrefix \(byte \d+\)/);
      }
    }
    // A byte that leaves nothing parseable is named by its offset.
    const broken = await post(Buffer.concat([Buffer.from('{"na'), Buffer.from([0xff]), Buffer.from("me")]), "application/json");
    expect(broken.status).toBe(400);
    expect(broken.json().error).toContain("invalid UTF-8 at byte 4");
    expect((await fetch(`${controller.url}/v1/rollouts/utf8-model`)).status).toBe(404);
    await expectServing();
  });

  it("an unpaired surrogate escape in a JSON string is a 400 naming the field", async () => {
    const body = JSON.stringify(spec({ name: "surrogate-model" })).replace('"/v1/predict"', '"/v1/\\ud800x"');
    const answer = await post(body, "application/json");
    expect(answer.status, answer.text).toBe(400);
    expect(answer.json().error).toContain("/match/pathPrefix: not valid Unicode");
  });

  it("wrong types, duplicate keys, several documents and an oversized YAML text are 400s with the reason", async () => {
    const cases: Array<[string, string, string]> = [
      ["application/yaml", "just a string", "must be object"],
      ["application/yaml", "- a\n- b\n", "must be object"],
      ["application/json", "[1, 2]", "must be object"],
      ["application/json", '"x"', "must be object"],
      ["application/yaml", "name: a\nname: b\n", "YAML syntax error at line 2, column 1: Map keys must be unique"],
      ["application/yaml", "name: a\n---\nname: b\n", "more than one document"],
      ["application/yaml", `name: x\nnote: "${"y".repeat(TEXT_LIMITS.maxYamlBytes)}"\n`, `the limit is ${TEXT_LIMITS.maxYamlBytes} bytes`],
      ["application/json", `[${Array(TEXT_LIMITS.maxValues + 5).fill(0)}]`, `a collection of ${TEXT_LIMITS.maxValues + 5} entries`],
      ["application/json", `[${Array(25).fill(`[${Array(900).fill(0)}]`)}]`, `more than ${TEXT_LIMITS.maxValues} values`],
      ["application/yaml", `[${Array(25).fill(`[${Array(900).fill(0)}]`)}]`, `more than ${TEXT_LIMITS.maxValues} values`],
    ];
    for (const [type, body, reason] of cases) {
      const answer = await post(body, type);
      expect(answer.status, `${body.slice(0, 40)}: ${answer.text}`).toBe(400);
      expect(answer.json().error).toContain(reason);
    }
    await expectServing();
  });

  it("after all of it, a good spec is created (201) as YAML and as JSON", async () => {
    const yaml = await post("name: after-model\nmatch:\n  pathPrefix: /v1/after\nstickyKey:\n  header: x-user-id\n", "application/yaml");
    expect(yaml.status, yaml.text).toBe(201);
    const json = await post(JSON.stringify(spec({ name: "after-json", match: { pathPrefix: "/v1/after-json" } })), "application/json");
    expect(json.status, json.text).toBe(201);
    expect(controller.alive()).toBe(true);
  });
});
