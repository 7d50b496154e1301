// The list page with 200 rollouts in real Chromium: time to first show all rows, time until a batch that
// changes every rollout at once is on screen, and the longest main-thread task meanwhile; against a baseline
// measured in the same run and browser: the same 200-row table written as one innerHTML string (no framework,
// no stream). `npm run bench:dashboard`.
import { buildDashboard } from "../scripts/build-dashboard.mjs";
import { startController } from "../controller/src/server.ts";
import { launchBrowser } from "../test/e2e/browser.ts";

const ROLLOUTS = Number(process.env.ROLLOUTS ?? 200);
const ROUNDS = Number(process.env.ROUNDS ?? 5);

await buildDashboard({ quiet: true });
const controller = await startController({ tickIntervalMs: 0, logger: false });
const store = controller.app.modelroll.store;
for (let i = 0; i < ROLLOUTS; i++) {
  const managed = i % 2 === 0;
  store.create({
    name: `model-${String(i).padStart(3, "0")}`,
    match: { pathPrefix: `/m${i}` },
    stickyKey: { header: "x-user-id" },
    ...(managed
      ? { owner: `team-${i % 7}`, rollbackCondition: "errors above 1%", stages: [5, 25, 100], promotion_gates: { error_rate: { maximum: 0.01 } } }
      : { canaryPercent: i % 50 }),
  } as never);
}
const browser = await launchBrowser();
const page = await browser.page();

await page.addInitScript(() => {
  const w = window as unknown as { longest: number };
  w.longest = 0;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) w.longest = Math.max(w.longest, e.duration);
  }).observe({ type: "longtask", buffered: true });
});

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const first: number[] = [];
const update: number[] = [];
const longest: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  const t0 = performance.now();
  await page.goto(`${controller.url}/`);
  await page.waitForFunction((n) => document.querySelectorAll("[data-testid=rollout-row]").length === n, ROLLOUTS, { polling: "raf" });
  first.push(performance.now() - t0);
  await page.evaluate(() => ((window as unknown as { longest: number }).longest = 0));
  const weight = 10 + round;
  const t1 = performance.now();
  // Every manual rollout changes in one turn: the stream sends them as one batch.
  for (const r of store.list()) if (r.engine === null) store.setCanaryPercent(r.spec.name, weight);
  await page.waitForFunction(
    (w) => [...document.querySelectorAll("[data-testid=rollout-row]")].filter((row) => row.children[3]?.textContent === `${w}%`).length >= 100,
    weight,
    { polling: "raf" },
  );
  update.push(performance.now() - t1);
  longest.push(await page.evaluate(() => (window as unknown as { longest: number }).longest));
}

// Baseline: the same table as one HTML string, in the same browser.
const rows = store
  .list()
  .map((r) => `<tr><td>${r.spec.name}</td><td>manual</td><td>–</td><td>${r.canaryPercent}%</td><td>–</td><td>–</td><td>1m</td><td></td></tr>`)
  .join("");
const baseFirst: number[] = [];
const baseUpdate: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  await page.setContent("<table><tbody id=b></tbody></table>");
  baseFirst.push(
    await page.evaluate(
      (html) =>
        new Promise<number>((resolve) => {
          const t = performance.now();
          const body = document.getElementById("b");
          if (body === null) throw new Error("the page has no #b table body");
          body.innerHTML = html;
          requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now() - t)));
        }),
      rows,
    ),
  );
  baseUpdate.push(
    await page.evaluate(
      (html) =>
        new Promise<number>((resolve) => {
          const t = performance.now();
          const body = document.getElementById("b");
          if (body === null) throw new Error("the page has no #b table body");
          body.innerHTML = html.replaceAll("%<", "%<");
          requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now() - t)));
        }),
      rows,
    ),
  );
}

const fmt = (x: number) => `${x.toFixed(0)} ms`;
console.log(`Chromium ${browser.version}, ${ROLLOUTS} rollouts, median of ${ROUNDS} rounds`);
console.log(`list page: all rows shown ${fmt(median(first))} after navigation (includes loading the page and the stream's first event)`);
console.log(
  `list page: a batch changing ${store.list().filter((r) => r.engine === null).length} rollouts on screen ${fmt(median(update))} after the write (the stream batches every 500 ms, so 0-500 ms of this is waiting for the batch)`,
);
console.log(`list page: longest main-thread task during the update ${fmt(median(longest))} (tasks over 50 ms count as long; 0: none)`);
console.log(`baseline (same browser): 200 rows as one innerHTML string: first ${fmt(median(baseFirst))}, rewrite ${fmt(median(baseUpdate))}`);
console.log(`ratio: first show ${(median(first) / median(baseFirst)).toFixed(1)}x the baseline's render (the baseline has no page load or network)`);
await browser.close();
await controller.close();
