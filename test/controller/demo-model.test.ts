// The demo model server's behaviour endpoint: per-segment overrides apply to matching requests only,
// old bodies keep working, and a bad body is a 400 naming the field and the reason, changing nothing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { behaviorFor, parseBehaviorUpdate, startModelServer, type ModelBehavior, type ModelServer } from "../../controller/src/demo/model-server.ts";

let server: ModelServer;
beforeAll(async () => {
  server = await startModelServer({ version: "v9" });
});
afterAll(async () => {
  await server?.close();
});

const RESET = { errorRate: 0, latencyMs: 0, labelShift: 0, garbage: false, fixedResponse: null, overrides: [] };

async function put(body: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${server.url}/__demo/behavior`, { method: "PUT", body: typeof body === "string" ? body : JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

async function current(): Promise<ModelBehavior> {
  return (await fetch(`${server.url}/__demo/behavior`)).json() as Promise<ModelBehavior>;
}

async function predict(headers: Record<string, string> = {}): Promise<{ status: number; ms: number; body: string }> {
  const started = performance.now();
  const res = await fetch(`${server.url}/predict`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: '{"features":[1]}' });
  const body = await res.text();
  return { status: res.status, ms: performance.now() - started, body };
}

describe("demo model server behaviour", () => {
  it("applies an override to matching requests only (header value compared case-insensitively)", async () => {
    try {
      const set = await put({ overrides: [{ when: { header: "x-tenant-tier", equals: "enterprise" }, errorRate: 1 }] });
      expect(set.status).toBe(200);
      expect(set.json.overrides).toHaveLength(1);
      expect(set.json.errorRate).toBe(0);

      const enterprise = await Promise.all(Array.from({ length: 20 }, (_, i) => predict({ "x-tenant-tier": i % 2 ? "enterprise" : "Enterprise" })));
      const pro = await Promise.all(Array.from({ length: 20 }, () => predict({ "x-tenant-tier": "pro" })));
      const none = await Promise.all(Array.from({ length: 20 }, () => predict()));
      expect(enterprise.map((r) => r.status)).toEqual(Array(20).fill(500));
      expect(pro.map((r) => r.status)).toEqual(Array(20).fill(200));
      expect(none.map((r) => r.status)).toEqual(Array(20).fill(200));
    } finally {
      expect((await put(RESET)).status).toBe(200);
    }
  });

  it("adds latency for one segment; fields an override leaves out keep the default; the first match wins", async () => {
    try {
      const set = await put({
        labelShift: 1,
        overrides: [
          { when: { header: "x-tenant-tier", equals: "enterprise" }, latencyMs: 600 },
          { when: { header: "x-tenant-tier", equals: "enterprise" }, errorRate: 1 },
          { when: { header: "x-region", equals: "eu" }, garbage: true },
        ],
      });
      expect(set.status).toBe(200);
      // Order, not a wall-clock threshold: the free request, sent after the enterprise one, is answered
      // first; the enterprise one waits at least its 600 ms (a lower bound: timers never fire early).
      const order: string[] = [];
      const answered = (what: string) => (r: Awaited<ReturnType<typeof predict>>) => {
        order.push(what);
        return r;
      };
      const slowAnswer = predict({ "x-tenant-tier": "enterprise" }).then(answered("enterprise"));
      const fast = await predict({ "x-tenant-tier": "free" }).then(answered("free"));
      const slow = await slowAnswer;
      const eu = await predict({ "x-region": "eu" });
      expect(order).toEqual(["free", "enterprise"]);
      expect(fast.status).toBe(200);
      expect(slow.status).toBe(200); // the second enterprise override never applies
      expect(slow.ms).toBeGreaterThanOrEqual(590);
      // labelShift comes from the defaults for every request.
      expect(JSON.parse(slow.body).model_version).toBe("v9");
      expect(eu.status).toBe(200);
      expect(eu.body).toContain("not a model answer");

      // The pure parts, as the server uses them.
      const b = await current();
      expect(behaviorFor(b, { "x-tenant-tier": "enterprise" })).toMatchObject({ latencyMs: 600, errorRate: 0, labelShift: 1 });
      expect(behaviorFor(b, { "x-tenant-tier": "pro" })).toMatchObject({ latencyMs: 0, errorRate: 0, labelShift: 1, garbage: false });
    } finally {
      expect((await put(RESET)).status).toBe(200);
    }
  });

  it("keeps the old bodies working: a field at a time, others unchanged, overrides untouched unless given", async () => {
    try {
      expect((await put({ overrides: [{ when: { header: "x-tenant-tier", equals: "pro" }, latencyMs: 5 }] })).status).toBe(200);
      expect((await put({ errorRate: 0.05 })).status).toBe(200);
      expect((await put({ latencyMs: 3 })).status).toBe(200);
      let b = await current();
      expect(b).toMatchObject({ errorRate: 0.05, latencyMs: 3, labelShift: 0, garbage: false, fixedResponse: null });
      expect(b.overrides).toHaveLength(1);
      const fixed = { headers: { "content-type": "application/json" }, bodyBase64: Buffer.from('{"prediction":"x"}').toString("base64") };
      expect((await put({ errorRate: 0, fixedResponse: fixed })).status).toBe(200);
      expect((await predict()).body).toBe('{"prediction":"x"}');
      expect((await put({ fixedResponse: null, overrides: [] })).status).toBe(200);
      b = await current();
      expect(b.fixedResponse).toBeNull();
      expect(b.overrides).toEqual([]);
      expect(b.latencyMs).toBe(3);
    } finally {
      expect((await put(RESET)).status).toBe(200);
    }
  });

  it("refuses a bad body with 400, the field's JSON pointer and the reason, and changes nothing", async () => {
    expect((await put({ errorRate: 0.25 })).status).toBe(200);
    try {
      const cases: Array<[unknown, string, RegExp]> = [
        ["not json", "", /valid JSON/],
        [[1, 2], "", /JSON object/],
        [{ errorRate: 2 }, "/errorRate", /from 0 to 1/],
        [{ errorRate: "0.1" }, "/errorRate", /from 0 to 1/],
        [{ latencyMs: -1 }, "/latencyMs", /milliseconds/],
        [{ labelShift: 0.5 }, "/labelShift", /whole number/],
        [{ garbage: "yes" }, "/garbage", /true or false/],
        [{ fixedResponse: { status: 200 } }, "/fixedResponse/bodyBase64", /required/],
        [{ fixedResponse: { bodyBase64: "", status: 42 } }, "/fixedResponse/status", /100 to 599/],
        [{ erorRate: 0.1 }, "/erorRate", /not a known field/],
        [{ when: { header: "x-tenant-tier", equals: "enterprise" }, errorRate: 0.1 }, "/when", /not a known field/],
        [{ overrides: { when: {} } }, "/overrides", /must be a list/],
        [{ overrides: [{ errorRate: 0.1 }] }, "/overrides/0/when", /is required/],
        [{ overrides: [{ when: { header: "X-Tenant-Tier", equals: "pro" }, errorRate: 0.1 }] }, "/overrides/0/when/header", /lowercase HTTP header name/],
        [{ overrides: [{ when: { header: "x-tenant-tier" }, errorRate: 0.1 }] }, "/overrides/0/when/equals", /is required/],
        [{ overrides: [{ when: { header: "x-tenant-tier", equals: 3 } }] }, "/overrides/0/when/equals", /must be a string/],
        [{ overrides: [{ when: { header: "x-tenant-tier", equals: "pro" } }] }, "/overrides/0", /changes nothing/],
        [{ overrides: [{ when: { header: "x-tenant-tier", equals: "pro", is: "x" }, errorRate: 0.1 }] }, "/overrides/0/when/is", /not a known field/],
        [{ overrides: [{ when: { header: "x-tenant-tier", equals: "pro" }, errorRate: 7 }] }, "/overrides/0/errorRate", /from 0 to 1/],
        [{ overrides: [{ when: { header: "x-tenant-tier", equals: "pro" }, overrides: [] }] }, "/overrides/0/overrides", /not a known field/],
      ];
      for (const [body, path, reason] of cases) {
        const res = await put(body);
        expect(res.status, JSON.stringify(body)).toBe(400);
        expect(typeof res.json.error).toBe("string");
        const detail = (res.json.details as Array<{ path: string; reason: string }>).find((d) => d.path === path);
        expect(detail, `${JSON.stringify(body)} -> ${JSON.stringify(res.json)}`).toBeDefined();
        expect(detail!.reason).toMatch(reason);
        expect(res.json.error).toContain(path || "(body)");
      }
      // A body with a valid field and an invalid one applies neither.
      expect((await put({ latencyMs: 7, errorRate: -1 })).status).toBe(400);
      const b = await current();
      expect(b).toMatchObject({ errorRate: 0.25, latencyMs: 0, overrides: [] });
      // Every problem is listed at once.
      const many = parseBehaviorUpdate({ errorRate: 9, latencyMs: "x", overrides: [{ when: { header: "" }, garbage: 1 }] });
      expect(many.ok).toBe(false);
      if (!many.ok) {
        expect(many.problems.map((p) => p.path).sort()).toEqual(
          ["/errorRate", "/latencyMs", "/overrides/0/garbage", "/overrides/0/when/equals", "/overrides/0/when/header"].sort(),
        );
      }
    } finally {
      expect((await put(RESET)).status).toBe(200);
    }
  });
});
