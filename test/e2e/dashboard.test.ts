// The dashboard in real Chromium against a real stack (controller, Envoy with the filter, demo models) with
// real traffic: the page's numbers match /stats, a canary made bad shows its failing gate and the rollback
// without a reload, the rollback button rolls back, a stale page's action gets the 412 message, a write from
// another site's page is refused, and a hidden tab closes its stream. Screenshots go to .artifacts/dashboard.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { buildDashboard } from "../../scripts/build-dashboard.mjs";
import { launchBrowser, screenshot, type Browser } from "./browser.ts";
import { api, managedSpec, sendMany, startStack, waitFor, type Stack } from "./harness.ts";

let stack: Stack;
let browser: Browser;
let ctl: string;

beforeAll(async () => {
  await buildDashboard({ quiet: true });
  stack = await startStack({ controller: { tickIntervalMs: 250 } });
  ctl = stack.controller!.url;
  browser = await launchBrowser();
  console.log(`Chromium ${browser.version}`);
});
// A failed test must not leave its page (and its open stream) behind for the next.
const opened: Page[] = [];
afterEach(async () => {
  for (const page of opened.splice(0)) if (!page.isClosed()) await page.close();
});
async function newPage() {
  const page = await browser.page();
  opened.push(page);
  return page;
}
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

/** A managed rollout that stays in its 50% stage (long minimum) unless a gate fails. */
const holding = (name: string, extra: Record<string, unknown> = {}) =>
  managedSpec(name, "canary error rate above 1%", {
    segments: [{ name: "tenant_tier", header: "x-tenant-tier", values: ["free", "pro", "enterprise"] }],
    stages: [{ canaryPercent: 50, minDurationSeconds: 3600, minRequests: 100000, deadlineSeconds: 7200 }, 100],
    promotion_gates: { error_rate: { maximum: 0.01 }, latency_p95_ms: { maximum_regression_percent: 50 } },
    ...extra,
  });

/** With output analysis: labels, confidence and a schema (and its gate). */
const OUTPUT = {
  output: {
    predictionField: "prediction",
    confidenceField: "confidence",
    labels: ["approve", "review", "decline"],
    schema: {
      type: "object",
      required: ["prediction", "confidence"],
      properties: { prediction: { enum: ["approve", "review", "decline"] }, confidence: { type: "number", minimum: 0, maximum: 1 } },
    },
  },
  promotion_gates: { error_rate: { maximum: 0.01 }, latency_p95_ms: { maximum_regression_percent: 50 }, schema_validation_pass_rate: { minimum: 0.99 } },
};

async function createHolding(name: string, extra: Record<string, unknown> = {}): Promise<void> {
  const created = await api(ctl, "POST", "/v1/rollouts", holding(name, extra));
  expect(created.status, JSON.stringify(created.json)).toBe(201);
  await waitFor(`${name}: Canary`, async () => (await api(ctl, "GET", `/v1/rollouts/${name}`)).json.phase === "Canary", 10_000, 50);
}

const TIERS = ["free", "pro", "enterprise", "other"];
/** Real requests through Envoy to /{name}/predict, `rounds` batches of 40. */
async function traffic(name: string, rounds: number, offset = 0): Promise<void> {
  for (let r = 0; r < rounds; r++) {
    await sendMany(
      `${stack.dataUrl}/${name}/predict`,
      40,
      (i) => ({ "x-user-id": `u${offset + r * 40 + i}`, "x-tenant-tier": TIERS[i % 4] }),
      8,
      (i) => `{"n":${offset + r * 40 + i}}`,
    );
  }
}

describe("the dashboard in Chromium", () => {
  it("shows a running rollout's stable and canary values as /stats has them, and the list", async () => {
    await createHolding("good", OUTPUT);
    for (let i = 0; i < 3; i++)
      await api(ctl, "POST", "/v1/rollouts", {
        name: `manual-${i}`,
        match: { pathPrefix: `/manual-${i}` },
        stickyKey: { header: "x-user-id" },
        canaryPercent: 5 * (i + 1),
      });
    await traffic("good", 8);
    const page = await newPage();
    await page.goto(`${ctl}/rollouts/good`);
    await page.getByTestId("traffic-canary").waitFor();
    await traffic("good", 2, 1000);
    // Traffic stopped: the page's numbers settle on exactly what /stats says (Envoy flushes histograms every second).
    let last = "";
    await waitFor(
      "the page to match /stats",
      async () => {
        const stats = (await api(ctl, "GET", "/v1/rollouts/good/stats")).json;
        const shown = await page.evaluate(() =>
          Object.fromEntries(
            [...document.querySelectorAll("[data-testid$='-requests'],[data-testid$='-error-rate'],[data-testid$='-p50'],[data-testid$='-p95']")].map((e) => [
              e.getAttribute("data-testid"),
              e.getAttribute("data-value"),
            ]),
          ),
        );
        const expected: Record<string, string> = {};
        for (const v of ["stable", "canary"]) {
          const s = stats.variants[v];
          expected[`${v}-requests`] = String(s.requests);
          expected[`${v}-error-rate`] = String(s.errorRate ?? "");
          expected[`${v}-p50`] = String(s.latencyMs.p50 ?? "");
          expected[`${v}-p95`] = String(s.latencyMs.p95 ?? "");
        }
        last = JSON.stringify({ shown, expected });
        return Object.entries(expected).every(([k, v]) => shown[k] === v) && Number(expected["canary-requests"]) > 0 && Number(expected["stable-requests"]) > 0;
      },
      20_000,
      250,
    ).catch((error) => {
      throw new Error(`${(error as Error).message}: ${last}`);
    });
    // The header and the scorecard: phase, stage, set and observed weight, gates per slice.
    expect(await page.getByTestId("phase").getAttribute("data-phase")).toBe("Canary");
    expect(await page.getByTestId("weights").textContent()).toContain("50% set");
    expect(await page.locator("[data-testid=gate-row][data-gate=error_rate][data-slice=overall]").count()).toBe(1);
    expect(await page.locator("[data-testid=segment-row]").count()).toBe(4);
    expect(await page.locator("[data-testid=labels] .bar-row").count()).toBe(3);
    await page.getByTestId("chart-requests").locator("canvas").first().waitFor();
    await screenshot(page, "rollout-good");

    // The list: every rollout, live.
    await page.goto(`${ctl}/`);
    await waitFor("the list", async () => (await page.locator("[data-testid=rollout-row]").count()) === 4, 10_000, 50);
    expect(await page.locator("[data-testid=rollout-row][data-name=good]").textContent()).toContain("Canary");
    // A change through the API reaches the open list without a reload.
    await api(ctl, "PUT", "/v1/rollouts/manual-0/weight", { canaryPercent: 42 });
    await waitFor(
      "the new weight on the list",
      async () => ((await page.locator("[data-testid=rollout-row][data-name=manual-0]").textContent()) ?? "").includes("42%"),
      10_000,
      50,
    );
    expect(page.problems).toEqual([]);
    await page.close();
  });

  it("shows a canary made bad failing its gate and rolled back, without a reload", async () => {
    await createHolding("bad");
    const page = await newPage();
    await page.goto(`${ctl}/rollouts/bad`);
    await page.getByTestId("phase").waitFor();
    await page.evaluate(() => ((window as unknown as { sameDocument: boolean }).sameDocument = true));
    const set = await fetch(`${stack.canary.url}/__demo/behavior`, { method: "PUT", body: JSON.stringify({ errorRate: 0.6 }) });
    expect(set.status).toBe(200);
    try {
      const sending = (async () => {
        for (let r = 0; r < 60 && (await api(ctl, "GET", "/v1/rollouts/bad")).json.phase === "Canary"; r++) await traffic("bad", 1, r * 40);
      })();
      await page.locator("[data-testid=phase][data-phase=RolledBack]").waitFor({ timeout: 30_000 });
      await sending;
      await page.locator("[data-testid=gate-row][data-gate=error_rate][data-verdict=Failed]").first().waitFor({ timeout: 10_000 });
      expect(await page.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument)).toBe(true);
      expect(await page.getByTestId("why").textContent()).toContain("error");
      expect(await page.locator(".timeline [data-kind=rolledBack]").count()).toBe(1);
      expect(await page.locator("[data-testid=actions]").count()).toBe(0);
      await screenshot(page, "rollout-bad");
    } finally {
      await fetch(`${stack.canary.url}/__demo/behavior`, { method: "PUT", body: JSON.stringify({ errorRate: 0 }) });
    }
    expect(page.problems).toEqual([]);
    await page.close();
  });

  it("rolls back from the button, and the next requests go to stable", async () => {
    await createHolding("button");
    await traffic("button", 2);
    const page = await newPage();
    await page.goto(`${ctl}/rollouts/button`);
    await page.getByTestId("action-rollback").click();
    await page.getByTestId("confirm-dialog").waitFor();
    await page.getByTestId("confirm-ok").click();
    await page.locator("[data-testid=phase][data-phase=RolledBack]").waitFor({ timeout: 10_000 });
    expect(await page.getByTestId("action-result").textContent()).toContain("Roll back done");
    const history = (await api(ctl, "GET", "/v1/rollouts/button/history")).json.decisions;
    expect(history.at(-1)).toMatchObject({ kind: "rolledBack", actor: "dashboard" });
    await waitFor(
      "every request on stable",
      async () =>
        (await sendMany(`${stack.dataUrl}/button/predict`, 40, (i) => ({ "x-user-id": `after-${i}` }), 8)).every(
          (r) => r.variant === "stable" && r.modelVersion === "v1",
        ),
      5000,
      20,
    );
    expect(page.problems).toEqual([]);
    await page.close();
  });

  it("tells a stale page's action what changed (412) instead of overwriting it", async () => {
    await createHolding("stale");
    const page = await newPage();
    await page.goto(`${ctl}/rollouts/stale`);
    await page.getByTestId("action-promote").click();
    await page.getByTestId("confirm-dialog").waitFor();
    // Another operator pauses it while the dialog is open.
    expect((await api(ctl, "POST", "/v1/rollouts/stale/pause", { reason: "someone else" })).status).toBe(200);
    await page.locator("[data-testid=phase][data-phase=Paused]").waitFor({ timeout: 10_000 });
    await page.getByTestId("confirm-ok").click();
    const result = page.getByTestId("action-result");
    await result.waitFor();
    const text = (await result.textContent()) ?? "";
    expect(text).toContain("Not done: the rollout changed since this page showed it");
    expect(text).toContain("phase Canary → Paused");
    const view = (await api(ctl, "GET", "/v1/rollouts/stale")).json;
    expect(view).toMatchObject({ phase: "Paused", stage: { index: 0 } });
    expect(page.problems).toEqual([]);
    await page.close();
  });

  it("refuses a write another site's page sends to the open loopback API (CSRF)", async () => {
    await createHolding("csrf");
    const target = `${ctl}/v1/rollouts/csrf/rollback`;
    const evil: Server = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/html" });
      res.end(`<!doctype html><form id="f" method="POST" action="${target}"></form><script>
        fetch(${JSON.stringify(target)}, { method: "POST", mode: "no-cors" }).finally(() => document.getElementById("f").submit());
      </script>`);
    });
    await new Promise<void>((resolve) => evil.listen(0, "127.0.0.1", resolve));
    try {
      const page = await newPage();
      const refused: number[] = [];
      const sent: string[] = [];
      page.on("response", (r) => {
        if (r.url() === target) refused.push(r.status());
      });
      page.on("request", (r) => {
        if (r.url() === target) sent.push(r.method());
      });
      await page.goto(`http://127.0.0.1:${(evil.address() as AddressInfo).port}/`, { waitUntil: "commit" });
      // The script's fetch is answered first, then the form posts and the tab shows the controller's answer.
      await page.waitForURL(target, { timeout: 10_000 });
      await page.locator("body").filter({ hasText: "refused" }).waitFor({ timeout: 10_000 });
      const answer = (await page.locator("body").textContent()) ?? "";
      expect(answer).toContain("refused: a write from another site (Sec-Fetch-Site: same-site)");
      expect(sent).toEqual(["POST", "POST"]);
      expect(refused.every((s) => s === 403)).toBe(true);
      const view = (await api(ctl, "GET", "/v1/rollouts/csrf")).json;
      expect(view).toMatchObject({ phase: "Canary", canaryPercent: 50 });
      await page.close();
    } finally {
      evil.closeAllConnections();
      await new Promise((resolve) => evil.close(resolve));
    }
  });

  it("creates a rollout from the page: a refused spec shows each bad field, a good one opens its page", async () => {
    const page = await newPage();
    await page.goto(`${ctl}/`);
    await page.getByTestId("new-rollout").click();
    await page.getByTestId("create-spec").fill("name: Not_A_Label\nmatch: { pathPrefix: created }\nstickyKey: { header: x-user-id }\n");
    await page.getByTestId("create-ok").click();
    const error = page.getByTestId("create-error");
    await error.waitFor();
    expect(await error.textContent()).toContain("/name");
    expect(await error.textContent()).toContain("/match/pathPrefix");
    const spec = [
      "name: created",
      "match: { pathPrefix: /created }",
      "stickyKey: { header: x-user-id }",
      "owner: team-fraud",
      "rollbackCondition: canary error rate above 1%",
      "stages: [{ canaryPercent: 20, minDurationSeconds: 3600, minRequests: 100000, deadlineSeconds: 7200 }, 100]",
      "promotion_gates: { error_rate: { maximum: 0.01 } }",
    ].join("\n");
    await page.getByTestId("create-spec").fill(spec);
    await page.getByTestId("create-ok").click();
    await page.waitForURL(`${ctl}/rollouts/created`);
    await page.locator("[data-testid=phase][data-phase=Canary]").waitFor({ timeout: 10_000 });
    expect((await api(ctl, "GET", "/v1/rollouts/created")).json).toMatchObject({ managed: true, canaryPercent: 20 });
    expect(page.problems).toEqual([]);
  });

  it("closes its stream while the tab is hidden and opens it again when shown", async () => {
    const streams = async () => {
      const text = await (await fetch(`${ctl}/metrics`)).text();
      return Number(/^modelroll_dashboard_streams (\d+)/m.exec(text)?.[1] ?? NaN);
    };
    const page = await newPage();
    await page.goto(`${ctl}/`);
    await page.locator("[data-testid=live][data-state=live]").waitFor();
    await waitFor("one open stream", async () => (await streams()) === 1, 5000, 50);
    const setVisibility = (state: string) =>
      page.evaluate((s) => {
        Object.defineProperty(document, "visibilityState", { configurable: true, get: () => s });
        document.dispatchEvent(new Event("visibilitychange"));
      }, state);
    await setVisibility("hidden");
    await waitFor("no open stream", async () => (await streams()) === 0, 5000, 50);
    expect(await page.getByTestId("live").getAttribute("data-state")).toBe("paused");
    await api(ctl, "PUT", "/v1/rollouts/manual-1/weight", { canaryPercent: 33 });
    await setVisibility("visible");
    await waitFor("the stream again", async () => (await streams()) === 1, 5000, 50);
    // What changed while hidden arrives on reconnect.
    await waitFor(
      "the change made while hidden",
      async () => ((await page.locator("[data-testid=rollout-row][data-name=manual-1]").textContent()) ?? "").includes("33%"),
      5000,
      50,
    );
    await page.getByTestId("attention-filter").check();
    await waitFor("only rollouts needing attention", async () => (await page.locator("[data-testid=rollout-row]").count()) === 3, 5000, 50);
    await page.getByTestId("attention-filter").uncheck();
    await screenshot(page, "list");
    expect(page.problems).toEqual([]);
    await page.close();
  });
});

describe("the dashboard's token flow in Chromium", () => {
  const API = "dashboard-api-token-0123456789";
  const FILTER = "dashboard-filter-token-0123456789";

  it("asks for a token, tells a wrong one, hides actions from the read-only token and lets the API token act", async () => {
    const { startController } = await import("../../controller/src/server.ts");
    const secured = await startController({ apiToken: API, filterToken: FILTER, tickIntervalMs: 0, logger: false });
    try {
      const auth = { authorization: `Bearer ${API}` };
      expect((await api(secured.url, "POST", "/v1/rollouts", holding("secure"), auth)).status).toBe(201);
      const page = await newPage();
      await page.goto(`${secured.url}/rollouts/secure`);
      const signIn = async (token: string) => {
        await page.getByTestId("token-input").fill(token);
        await page.getByTestId("token-submit").click();
      };
      await page.getByTestId("token-form").waitFor();
      await signIn("not-the-right-token-0123456789");
      expect(await page.getByTestId("token-error").textContent()).toContain("Wrong token");
      // The read-only token sees the rollout and no action buttons.
      await signIn(FILTER);
      await page.getByTestId("rollout-page").waitFor();
      expect(await page.getByTestId("access").textContent()).toContain("read-only");
      expect(await page.locator("[data-testid=actions]").count()).toBe(0);
      // Kept for this tab only: a reload stays signed in; the URL never carries it.
      await page.reload();
      await page.getByTestId("rollout-page").waitFor();
      expect(page.url()).not.toContain(FILTER);
      expect(await page.evaluate(() => [document.cookie, JSON.stringify(localStorage)])).toEqual(["", "{}"]);
      await page.getByText("sign out").click();
      await signIn(API);
      await page.getByTestId("action-promote").click();
      await page.getByTestId("confirm-ok").click();
      await page.locator("[data-testid=phase][data-phase=Canary]").waitFor({ timeout: 10_000 });
      expect((await api(secured.url, "GET", "/v1/rollouts/secure", undefined, auth)).json.phase).toBe("Canary");
      // This controller reads no Envoy: /stats answers 503, which the page shows; nothing else went wrong.
      expect(page.problems.filter((p) => !p.includes("status of 503"))).toEqual([]);
    } finally {
      await secured.close();
    }
  });
});
