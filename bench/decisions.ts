// Benchmark (not a test): how long the engine takes to promote a good canary and to roll back a bad one, and
// how often it rolls back an identical one, before issue 10 (the engine at a6cca0d, loaded from git) and after
// (this checkout), in the same run, on the same simulated traffic. Setup (bench/decisions/scenarios.ts): stages
// 5, 25, 50, 100 at the engine's default settings, the seed's traffic gates plus an output schema gate, a 5 s
// tick, Poisson traffic at 20, 100 and 1000 requests/s, segment mixes 60/30/10, 80/15/5 and none.
//   npx tsx bench/decisions.ts        (BENCH_RUNS seeds per cell, default 12; BENCH_FALSE_RUNS identical-model
//                                      rollouts per traffic level and pattern, default 60; BENCH_MAX_SECONDS 7200)
import { engineBefore, currentEngine, type Engine } from "./decisions/engines.ts";
import { DEFECTS, DEFECT_LABELS, MIXES, runRollout, type Defect, type Outcome } from "./decisions/scenarios.ts";
import { TRAFFIC_PATTERNS } from "../test/engine/traffic-patterns.ts";

const RUNS = Number(process.env.BENCH_RUNS ?? 12);
const FALSE_RUNS = Number(process.env.BENCH_FALSE_RUNS ?? 60);
const MAX_SECONDS = Number(process.env.BENCH_MAX_SECONDS ?? 7200);
const LEVELS = [20, 100, 1000];

/** Issue 10's targets at about 100 requests/s (seconds); at 1000 requests/s each a third of it. */
const TARGETS: Record<Defect, number> = { good: 600, errors5: 30, "p95+25%": 60, segment40: 45, schema2: 30 };

const expected = (defect: Defect) => (defect === "good" ? "Succeeded" : "RolledBack");

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

function cell(outcomes: Outcome[], defect: Defect): string {
  const hits = outcomes.flatMap((o) => (o.phase === expected(defect) && o.seconds !== null ? [{ ...o, seconds: o.seconds }] : []));
  const others = new Map<string, number>();
  for (const o of outcomes) if (o.phase !== expected(defect)) others.set(o.phase, (others.get(o.phase) ?? 0) + 1);
  const otherText = [...others].map(([p, n]) => `${n} ${p === "Canary" || p === "Baking" ? `unfinished after ${MAX_SECONDS} s` : p}`).join(", ");
  if (hits.length === 0) return `none of ${outcomes.length} (${otherText})`;
  const times = hits.map((o) => o.seconds);
  const stages = new Map<string, number>();
  if (defect !== "good") for (const o of hits) stages.set(o.stage ?? "?", (stages.get(o.stage ?? "?") ?? 0) + 1);
  const where = defect === "good" ? "" : ` at ${[...stages].map(([s, n]) => `${s} ${n}`).join(", ")}`;
  return `${quantile(times, 0.5)} s (p90 ${quantile(times, 0.9)} s)${hits.length < outcomes.length ? `, ${hits.length}/${outcomes.length}` : ""}${where}${otherText ? `; ${otherText}` : ""}`;
}

function timing(engine: Engine, rps: number, mix: string, defect: Defect): Outcome[] {
  const out: Outcome[] = [];
  for (let seed = 1; seed <= RUNS; seed++) out.push(runRollout(engine, { rps, mix, defect, pattern: "steady", seed: seed * 7919 + rps }, MAX_SECONDS));
  return out;
}

async function main(): Promise<void> {
  const started = performance.now();
  const before = await engineBefore();
  const after = await currentEngine();
  try {
    console.log(`# Decisions at realistic traffic: before (engine at a6cca0d) and after, ${RUNS} seeded rollouts per cell`);
    console.log(
      `stages 5, 25, 50, 100 at default settings; gates latency_p95_ms 10%, error_rate 1%, schema_validation_pass_rate 99.5%, gpu_oom_events; 5 s ticks; time from the first stage's start; median (p90)\n`,
    );
    const rows: string[] = ["| rps | segments | case | target | before | after |", "|---|---|---|---|---|---|"];
    for (const rps of LEVELS) {
      for (const mix of Object.keys(MIXES)) {
        for (const defect of DEFECTS) {
          if (defect === "segment40" && MIXES[mix] === null) continue;
          const target = rps >= 1000 ? TARGETS[defect] / 3 : rps === 100 ? TARGETS[defect] : null;
          const b = cell(timing(before.engine, rps, mix, defect), defect);
          const a = cell(timing(after, rps, mix, defect), defect);
          rows.push(`| ${rps} | ${mix} | ${DEFECT_LABELS[defect]} | ${target === null ? "" : `<= ${Math.round(target)} s`} | ${b} | ${a} |`);
          process.stderr.write(".");
        }
      }
    }
    process.stderr.write("\n");
    console.log(rows.join("\n"));

    console.log(`\n## False rollbacks of a model identical to stable (segments 60/30/10; every other run with heavy-tailed latency)\n`);
    const fa: string[] = ["| rps | traffic | before: rolled back / runs (other endings) | after: rolled back / runs (other endings) |", "|---|---|---|---|"];
    const totals: Record<"before" | "after", number[]> = { before: [0, 0], after: [0, 0] };
    for (const rps of LEVELS) {
      for (const pattern of TRAFFIC_PATTERNS) {
        const texts: string[] = [];
        for (const [label, engine] of [
          ["before", before.engine],
          ["after", after],
        ] as const) {
          let rolledBack = 0;
          const ends = new Map<string, number>();
          for (let i = 0; i < FALSE_RUNS; i++) {
            const o = runRollout(engine, { rps, mix: "60/30/10", defect: "good", pattern, seed: 100_003 * (i + 1) + rps, heavyTail: i % 2 === 1 }, MAX_SECONDS);
            if (o.phase === "RolledBack") rolledBack++;
            else if (o.phase !== "Succeeded") ends.set(o.phase, (ends.get(o.phase) ?? 0) + 1);
          }
          totals[label][0] += rolledBack;
          totals[label][1] += FALSE_RUNS;
          const other = [...ends].map(([p, n]) => `${n} ${p === "Failed" ? "failed at a deadline" : `unfinished after ${MAX_SECONDS} s`}`).join(", ");
          texts.push(`${rolledBack} / ${FALSE_RUNS}${other ? ` (${other})` : ""}`);
        }
        fa.push(`| ${rps} | ${pattern} | ${texts[0]} | ${texts[1]} |`);
        process.stderr.write(".");
      }
    }
    process.stderr.write("\n");
    fa.push(`| all | | ${totals.before[0]} / ${totals.before[1]} | ${totals.after[0]} / ${totals.after[1]} |`);
    console.log(fa.join("\n"));
    console.log(`\n(${((performance.now() - started) / 1000).toFixed(0)} s)`);
  } finally {
    before.cleanup();
  }
}

await main();
