// The dashboard as a person sees it at 1400 px, in real Chromium against a real stack: the header says which
// model is which (the declared versions and the hosts Envoy reaches), the gates' reasons are whole, a paused
// rollout promises no decision time, "of 0 minimum" is not said, Roll back asks for a reason that reaches the
// record, and afterwards the observed share says over which window it was measured. Screenshots (for a person
// to look at: the chart's decision labels) go to .artifacts/dashboard/visibility-*.png.
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildDashboard } from "../../scripts/build-dashboard.mjs";
import { launchBrowser, screenshot, type Browser } from "./browser.ts";
import { api, managedSpec, sendMany, startStack, waitFor, type Stack } from "./harness.ts";

let stack: Stack;
let browser: Browser;
let ctl: string;
let page: Page & { problems: string[] };

beforeAll(async () => {
  await buildDashboard({ quiet: true });
  stack = await startStack({ controller: { tickIntervalMs: 250, upstreamsIntervalMs: 300 } });
  ctl = stack.controller!.url;
  browser = await launchBrowser();
  page = await browser.page();
});
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

const TIERS = ["free", "pro", "enterprise"];
async function traffic(name: string, n: number, offset: number): Promise<void> {
  await sendMany(`${stack.dataUrl}/${name}/predict`, n, (i) => ({ "x-user-id": `u${offset + i}`, "x-tenant-tier": TIERS[i % 3]! }), 8);
}

const stage = (canaryPercent: number) => ({ canaryPercent, minDurationSeconds: 3600, minRequests: 0, deadlineSeconds: 7200 });

describe("the dashboard says which model is which", () => {
  it("header and list name the models; reasons are whole at 1400 px; paused: no ETA; Roll back records its reason and the observed share its window", async () => {
    const name = "seen";
    const spec = managedSpec(name, "canary error rate above 1%", {
      models: { stable: "v1", canary: "v2" },
      segments: [{ name: "tenant_tier", header: "x-tenant-tier", values: TIERS }],
      stages: [stage(5), stage(10), stage(20), 100],
      promotion_gates: { error_rate: { maximum: 0.01 }, latency_p95_ms: { maximum_regression_percent: 50 } },
    });
    expect((await api(ctl, "POST", "/v1/rollouts", spec)).status).toBe(201);
    await waitFor(`${name}: Canary`, async () => (await api(ctl, "GET", `/v1/rollouts/${name}`)).json.phase === "Canary", 10_000, 50);
    // Decisions seconds apart, as a quick succession of promotions makes them: their chart labels would overlap.
    await traffic(name, 120, 0);
    for (const reason of ["looks fine", "still fine"]) {
      expect((await api(ctl, "POST", `/v1/rollouts/${name}/promote`, { reason })).status).toBe(200);
      await traffic(name, 120, 1000);
    }
    const models = `stable v1 at 127.0.0.1:${new URL(stack.stable.url).port} · canary v2 at 127.0.0.1:${new URL(stack.canary.url).port}`;
    await waitFor("the upstreams read from Envoy", async () => (await api(ctl, "GET", `/v1/rollouts/${name}`)).json.variants.text === models, 10_000, 100);
    await waitFor(
      "an evaluation of the 20% stage",
      async () => (await api(ctl, "GET", `/v1/rollouts/${name}`)).json.evaluation?.stage?.name === "20%",
      10_000,
      100,
    );
    // Traffic in the 20% stage's window (its baseline is taken at the first tick after the promotion).
    await traffic(name, 200, 5000);
    await waitFor(
      "a share observed in the 20% stage",
      async () => ((await api(ctl, "GET", `/v1/rollouts/${name}`)).json.evaluation?.observedCanaryPercent ?? null) !== null,
      10_000,
      100,
    );

    await page.goto(`${ctl}/rollouts/${name}`);
    await page.getByTestId("scorecard").waitFor();
    await page.getByTestId("chart-requests").locator("canvas").first().waitFor();
    expect(await page.getByTestId("models").textContent()).toBe(models);
    const progress = await page.getByTestId("stage-progress").textContent();
    expect(progress).toMatch(/requests \d+/);
    expect(progress).not.toMatch(/of 0 minimum/);
    await waitFor("the observed share and its window", async () => ((await page.getByTestId("observed-window").textContent()) ?? "").length > 0, 10_000, 100);
    expect(await page.getByTestId("observed-window").textContent()).toMatch(/^ over stage 20%'s window \(\d+s\)$/);

    // Every gate's reason whole: not cut by the cell, and inside the 1400 px page.
    const reasons = await page.getByTestId("gate-reason").evaluateAll((cells) =>
      cells.map((c) => {
        const box = c.getBoundingClientRect();
        return { text: c.textContent ?? "", cut: c.scrollWidth > c.clientWidth + 1, right: box.right, page: document.documentElement.clientWidth };
      }),
    );
    expect(reasons.length).toBeGreaterThan(3);
    for (const r of reasons) {
      expect(r.text.length, "a reason").toBeGreaterThan(10);
      expect(r.cut, r.text).toBe(false);
      expect(r.right, r.text).toBeLessThanOrEqual(r.page);
    }
    await screenshot(page, "visibility-running");

    // Paused: the header promises no decision time.
    await page.getByTestId("action-pause").click();
    await page.getByTestId("confirm-reason").fill("checking the canary's answers");
    await page.getByTestId("confirm-ok").click();
    await page.locator("[data-testid=phase][data-phase=Paused]").waitFor({ timeout: 10_000 });
    expect(await page.getByTestId("stage-progress").textContent()).not.toContain("decision expected");

    // Roll back asks for a reason, and the record keeps it.
    await page.getByTestId("action-rollback").click();
    await page.getByTestId("confirm-dialog").waitFor();
    await page.getByTestId("confirm-reason").fill("answers look off for enterprise users");
    await page.getByTestId("confirm-ok").click();
    await page.locator("[data-testid=phase][data-phase=RolledBack]").waitFor({ timeout: 10_000 });
    const history = (await api(ctl, "GET", `/v1/rollouts/${name}/history`)).json.decisions;
    expect(history.at(-1)).toMatchObject({ kind: "rolledBack", actor: "dashboard", reason: expect.stringContaining("answers look off for enterprise users") });
    // After the rollback: the share observed is the last stage's, and says so.
    await waitFor("the ended window", async () => ((await page.getByTestId("observed-window").textContent()) ?? "").includes("before it ended"), 10_000, 100);
    expect(await page.getByTestId("weights").textContent()).toMatch(
      /^canary 0% set, [\d.]+% observed over stage 20%'s window \(\d+s\), before it ended; not measured since · shadow 0%$/,
    );
    await screenshot(page, "visibility-rolled-back");

    // The list: stable → canary.
    await page.goto(`${ctl}/`);
    await page.locator(`[data-testid=rollout-row][data-name=${name}]`).waitFor();
    expect(await page.locator(`[data-testid=rollout-row][data-name=${name}] [data-testid=row-models]`).textContent()).toBe("v1 → v2");
    await screenshot(page, "visibility-list");
    expect(page.problems).toEqual([]);
  });
});
