// Bodies in a type the API does not read, or too large: a 415 that says what to send, a 413 that names the
// limit, instead of a schema error about "(root)" or Fastify's bare wording.
import { describe, expect, it } from "vitest";
import { createRollout, spec, testApp } from "./helpers.ts";

const json = JSON.stringify(spec({ canaryPercent: 5 }));

describe("request body types and size", () => {
  it.each([
    ["text/plain", "'text/plain'"],
    ["text/plain; charset=utf-8", "'text/plain; charset=utf-8'"],
    ["application/x-www-form-urlencoded", "'application/x-www-form-urlencoded'"],
    ["application/xml", "'application/xml'"],
  ])("a create sent as %s is a 415 naming the types to send", async (contentType, shown) => {
    const app = await testApp();
    const response = await app.inject({ method: "POST", url: "/v1/rollouts", headers: { "content-type": contentType }, payload: json });
    expect(response.statusCode).toBe(415);
    expect(response.json()).toEqual({ error: `rollout spec: unsupported content type ${shown}, send application/json or application/yaml` });
    expect(app.modelroll.store.size).toBe(0);
  });

  it("a weight change sent as text/plain is a 415 about that rollout, and changes nothing", async () => {
    const app = await testApp();
    await createRollout(app, spec({ canaryPercent: 5 }));
    const response = await app.inject({
      method: "PUT",
      url: "/v1/rollouts/fraud-model/weight",
      headers: { "content-type": "text/plain" },
      payload: '{"canaryPercent":50}',
    });
    expect(response.statusCode).toBe(415);
    expect(response.json().error).toBe("rollout fraud-model: unsupported content type 'text/plain', send application/json or application/yaml");
    expect(app.modelroll.store.get("fraud-model").canaryPercent).toBe(5);
  });

  it.each(["text/plain", "application/x-www-form-urlencoded"])("an empty body sent as %s is no body: a rollback still works", async (contentType) => {
    const app = await testApp();
    await createRollout(app, spec({ canaryPercent: 5 }));
    // What `curl -XPOST -d '' ...` sends.
    const response = await app.inject({ method: "POST", url: "/v1/rollouts/fraud-model/rollback", headers: { "content-type": contentType }, payload: "" });
    expect(response.statusCode).toBe(200);
    expect(response.json().canaryPercent).toBe(0);
  });

  it("a body without a content type is a 415 too", async () => {
    const app = await testApp();
    const response = await app.inject({ method: "POST", url: "/v1/rollouts", payload: Buffer.from(json) });
    expect(response.statusCode).toBe(415);
    expect(response.json().error).toMatch(/^rollout spec: unsupported content type .*, send application\/json or application\/yaml$/);
  });

  it("a body over the limit is a 413 naming the limit", async () => {
    const app = await testApp();
    const response = await app.inject({
      method: "POST",
      url: "/v1/rollouts",
      headers: { "content-type": "application/json" },
      payload: `{"name":"${"a".repeat(1_100_000)}"}`,
    });
    expect(response.statusCode).toBe(413);
    expect(response.json()).toEqual({ error: "rollout spec: request body too large: the limit is 1 MiB (1048576 bytes)" });
  });
});
