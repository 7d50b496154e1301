// GET /v1/rollouts served from its cached serialization and paged with ?limit and ?continue, against the real
// controller process: pages cover every rollout once, in name order, also with writes between pages; the
// cached list shows a write at once; bad paging input is a 400 with the reason (needs `npm run build`).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRealController, type RealController } from "./real-controller.ts";

let controller: RealController;
const NAMES = Array.from({ length: 25 }, (_, i) => `model-${String(i).padStart(2, "0")}`);

beforeAll(async () => {
  controller = await startRealController();
  for (const name of [...NAMES].reverse()) {
    const created = await fetch(`${controller.url}/v1/rollouts`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name, match: { pathPrefix: `/v1/${name}` }, stickyKey: { header: "x-user-id" } }),
    });
    expect(created.status).toBe(201);
  }
}, 60_000);
afterAll(async () => {
  await controller?.stop();
});

interface Page {
  rollouts: Array<{ name: string; canaryPercent: number; revision: number }>;
  continue?: string;
}

async function get(query: string): Promise<{ status: number; body: Page & { error?: string }; type: string | null }> {
  const response = await fetch(`${controller.url}/v1/rollouts${query}`);
  return { status: response.status, body: (await response.json()) as Page & { error?: string }, type: response.headers.get("content-type") };
}

describe("GET /v1/rollouts", () => {
  it("the whole list, sorted, and again after a write (the cached text follows the store)", async () => {
    const first = await get("");
    expect(first.status).toBe(200);
    expect(first.type).toBe("application/json; charset=utf-8");
    expect(first.body.rollouts.map((r) => r.name)).toEqual(NAMES);
    expect(first.body.continue).toBeUndefined();
    const again = await get("");
    expect(again.body).toEqual(first.body);

    const changed = await fetch(`${controller.url}/v1/rollouts/model-07/weight`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: '{"canaryPercent":7}',
    });
    expect(changed.status).toBe(200);
    const after = await get("");
    expect(after.body.rollouts.find((r) => r.name === "model-07")?.canaryPercent).toBe(7);
    // The list's view of a rollout is the single GET's, byte for byte in content.
    const single = await (await fetch(`${controller.url}/v1/rollouts/model-07`)).json();
    expect(after.body.rollouts.find((r) => r.name === "model-07")).toEqual(single);
  });

  it("the whole list has an ETag: If-None-Match with it is a 304 until a write, then a 200 with a new ETag", async () => {
    const first = await fetch(`${controller.url}/v1/rollouts`);
    const etag = first.headers.get("etag");
    expect(etag).toMatch(/^"list-[A-Za-z0-9_-]+-\d+"$/);
    await first.arrayBuffer();
    const same = await fetch(`${controller.url}/v1/rollouts`, { headers: { "if-none-match": etag as string } });
    expect(same.status).toBe(304);
    expect(await same.text()).toBe("");
    const other = await fetch(`${controller.url}/v1/rollouts`, { headers: { "if-none-match": '"list-x-1"' } });
    expect(other.status).toBe(200);
    await other.arrayBuffer();
    const changed = await fetch(`${controller.url}/v1/rollouts/model-08/weight`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: '{"canaryPercent":8}',
    });
    expect(changed.status).toBe(200);
    const after = await fetch(`${controller.url}/v1/rollouts`, { headers: { "if-none-match": etag as string } });
    expect(after.status).toBe(200);
    expect(after.headers.get("etag")).not.toBe(etag);
    expect(((await after.json()) as Page).rollouts.find((r) => r.name === "model-08")?.canaryPercent).toBe(8);
  });

  it("pages of 10 cover every rollout once in order; a rollout created mid-way after the cursor shows up, one before it does not repeat", async () => {
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await get(`?limit=10${token ? `&continue=${token}` : ""}`);
      expect(page.status).toBe(200);
      expect(page.body.rollouts.length).toBeLessThanOrEqual(10);
      seen.push(...page.body.rollouts.map((r) => r.name));
      token = page.body.continue;
      if (pages++ === 0) {
        for (const name of ["model-00a", "model-99"]) {
          const created = await fetch(`${controller.url}/v1/rollouts`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ name, match: { pathPrefix: `/v1/${name}` }, stickyKey: { header: "x-user-id" } }),
          });
          expect(created.status).toBe(201);
        }
      }
    } while (token !== undefined && pages < 10);
    expect(seen).toEqual([...NAMES, "model-99"]);
    expect(pages).toBe(3);
  });

  const bad: Array<[string, string]> = [
    ["?limit=0", "limit must be an integer 1..1000"],
    ["?limit=1001", "limit must be an integer 1..1000"],
    ["?limit=-1", "limit must be an integer 1..1000"],
    ["?limit=abc", "limit must be an integer 1..1000"],
    ["?limit=1&limit=2", "limit must be string"],
    ["?continue=%00%ff", "continue: not a token this list gave"],
    ["?continue=bW9kZWwtMDE", "continue: not a token this list gave"],
    [`?continue=${"a".repeat(401)}`, "continue must NOT have more than 400 characters"],
    ["?archived=true&limit=5", "limit and continue page the live rollouts, not the archive"],
  ];
  for (const [query, reason] of bad) {
    it(`${query.slice(0, 40)}: 400 with the reason, twice`, async () => {
      for (let round = 0; round < 2; round++) {
        const answer = await get(query);
        expect(answer.status, JSON.stringify(answer.body).slice(0, 300)).toBe(400);
        expect(answer.body.error).toContain(reason);
      }
      expect(controller.alive()).toBe(true);
    });
  }
});
