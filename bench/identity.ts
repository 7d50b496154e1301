// Benchmark (not a test): what the model identity check costs on the data path. One Envoy (1 worker) with the
// filter in front of a fixed upstream answering the demo model's answer (about 80 bytes, and 16 KB) with an
// x-model-version header; three rollouts on the same answers: `plain` only routes, `hdr` checks the version in
// the header, `fld` reads it from the JSON body (model_version), which parses every answer.
//   npm run bench:identity   (needs wrk)
import { envoyVersion, keysScript, median, requireWrk, wrk } from "./lib.ts";
import { startFixedAnswerStack } from "./fixed-stack.ts";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);
const SMALL = JSON.stringify({ prediction: "approve", confidence: 0.93, model_version: "v1" });
const LARGE = JSON.stringify({
  prediction: "approve",
  confidence: 0.93,
  model_version: "v1",
  items: Array.from({ length: 400 }, (_, i) => ({ id: i, label: "review", score: 0.5 })),
});
const MODES = {
  plain: undefined,
  hdr: { stable: "v1", canary: "v2", versionHeader: "x-model-version" },
  fld: { stable: "v1", canary: "v2", versionField: "model_version" },
} as const;

const signed = (x: number) => `${x >= 0 ? "+" : ""}${x.toFixed(0)}`;

requireWrk();
const stack = await startFixedAnswerStack({
  routes: Object.keys(MODES).flatMap((mode) =>
    [
      ["s", SMALL],
      ["l", LARGE],
    ].map(([size, body]) => ({ prefix: `/${mode}-${size}/`, body, headers: { "x-model-version": "v1" } })),
  ),
  rollouts: Object.entries(MODES).flatMap(([mode, models]) =>
    ["s", "l"].map((size) => ({
      name: `${mode}-${size}`,
      match: { pathPrefix: `/${mode}-${size}/` },
      stickyKey: { header: "x-user-id" },
      ...(models ? { models } : {}),
    })),
  ),
});
try {
  const base = stack.base;
  const script = keysScript();
  console.log(`\nmodelroll identity bench (${REPEATS} x ${SECONDS}s per point, medians; ${envoyVersion()}, 1 worker)`);
  for (const [size, bytes] of [
    ["s", SMALL.length],
    ["l", LARGE.length],
  ] as const) {
    const p50: Record<string, number[]> = { plain: [], hdr: [], fld: [] };
    const rps: Record<string, number[]> = { plain: [], hdr: [], fld: [] };
    for (const mode of Object.keys(MODES)) await wrk(`${base}/${mode}-${size}/p`, 2, 2, script);
    for (let i = 0; i < REPEATS; i++) {
      for (const mode of Object.keys(MODES)) {
        p50[mode].push((await wrk(`${base}/${mode}-${size}/p`, 2, SECONDS, script)).p50us);
        rps[mode].push((await wrk(`${base}/${mode}-${size}/p`, 16, SECONDS, script)).rps);
      }
    }
    const line = (mode: string) =>
      `${mode}: p50 ${signed(median(p50[mode]) - median(p50.plain))} us, throughput ${(median(rps[mode]) / median(rps.plain)).toFixed(3)} of plain (${median(rps[mode]).toFixed(0)} rps)`;
    console.log(`${bytes} B answers: plain p50 ${median(p50.plain).toFixed(0)} us, ${median(rps.plain).toFixed(0)} rps; ${line("hdr")}; ${line("fld")}`);
  }
  const text = await (await fetch(`${stack.adminUrl}/stats?filter=model\\.`)).text();
  console.log(
    `check: ${text
      .split("\n")
      .filter((l) => /\.(stable|other|missing)\.answers: [1-9]/.test(l))
      .join("; ")}`,
  );
} finally {
  await stack.stop();
}
process.exit(0);
