// A rollout as text: `get` (a header, then the stages as a tree with the current stage's gates under it),
// the one-line summary commands print after a change, and the `list` table. Pure.
import { age, clip, count, duration, percent, table, type Paint } from "./format.ts";
import { isSuccessPhase, isTerminalPhase, worstFirst, type GateSlice, type Picture, type Verdict } from "./picture.ts";

const PHASE_ICONS: Record<string, string> = {
  Pending: "○",
  Shadowing: "◐",
  Canary: "◑",
  Baking: "◕",
  Paused: "⏸",
  AwaitingReview: "⌛",
  Succeeded: "✔",
  Finalizing: "⇄",
  Finalized: "★",
  RolledBack: "↩",
  Failed: "✘",
};

const VERDICT_ICONS: Record<Verdict, string> = { Passed: "✔", Failed: "✘", Inconclusive: "?", Error: "⚠", Unknown: "·" };

export function phaseText(phase: string | null, p: Paint): string {
  if (phase === null) return p.blue("● manual");
  const text = `${PHASE_ICONS[phase] ?? "•"} ${phase}`;
  if (isSuccessPhase(phase)) return p.green(text);
  if (phase === "RolledBack" || phase === "Failed") return p.red(text);
  if (phase === "Paused" || phase === "AwaitingReview") return p.yellow(text);
  return p.blue(text);
}

function verdictIcon(verdict: Verdict, p: Paint): string {
  const icon = VERDICT_ICONS[verdict];
  return verdict === "Passed" ? p.green(icon) : verdict === "Failed" ? p.red(icon) : verdict === "Unknown" ? icon : p.yellow(icon);
}

/** "2/4 (5%)", "2 (5%)" without the plan, "-" before the first stage. */
function stageText(picture: Pick<Picture, "stage" | "stageCount">): string {
  if (!picture.stage) return "-";
  const position = picture.stageCount !== null ? `${picture.stage.index + 1}/${picture.stageCount}` : `${picture.stage.index + 1}`;
  return `${position} (${picture.stage.name})`;
}

/**
 * ", observed 5.21% over stage 10%'s window (2m10s) before it ended; not measured since": the share the last
 * evaluation measured, and over which window, so an ended rollout's last share does not read as traffic now.
 */
export function observedText(picture: Pick<Picture, "observedCanaryPercent" | "observedWindow">): string {
  if (picture.observedCanaryPercent === null) return "";
  const observed = `, observed ${percent(picture.observedCanaryPercent)}`;
  const w = picture.observedWindow;
  if (w === null) return observed;
  const window = `over ${w.stage ? `stage ${w.stage}'s` : "the stage's"} window${w.seconds !== null ? ` (${duration(w.seconds * 1000)})` : ""}`;
  if (w.state === "ended") return `${observed} ${window} before it ended; not measured since`;
  return `${observed} ${window}`;
}

function weightText(picture: Picture): string {
  return `canary ${percent(picture.canaryPercent)} set${observedText(picture)} · shadow ${percent(picture.shadowPercent)}`;
}

/** `modelroll get`: everything the picture knows, nothing it does not. */
export function renderRollout(picture: Picture, p: Paint): string {
  const title = [p.bold(picture.name), phaseText(picture.managed ? (picture.phase ?? "Pending") : null, p)];
  if (picture.managed) title.push(`stage ${stageText(picture)}`);
  if (picture.revision !== null) title.push(p.dim(`revision ${picture.revision}`));
  const lines = [title.join("  ")];
  const row = (label: string, text: string | null) => {
    if (text !== null) lines.push(`  ${p.dim(label.padEnd(10))} ${text}`);
  };
  row("models", picture.models);
  row("weight", weightText(picture));
  if (picture.match) row("match", `${picture.match}${picture.stickyHeader ? `, sticky on ${picture.stickyHeader}` : ""}`);
  row("owner", picture.owner);
  row("rollback", picture.rollbackCondition);
  if (picture.holding.length > 0) {
    const eta = picture.etaSeconds !== null && picture.phase !== "Paused" ? p.dim(` (decision expected in ${duration(picture.etaSeconds * 1000)})`) : "";
    row("holds", clip(picture.holding.join("; "), 240) + eta);
  } else if (picture.etaSeconds !== null && !isTerminalPhase(picture.phase) && picture.phase !== "Paused") {
    row("decision", `expected in ${duration(picture.etaSeconds * 1000)}`);
  }
  if (picture.managed && (isTerminalPhase(picture.phase) || picture.holding.length === 0)) row(isTerminalPhase(picture.phase) ? "why" : "last", picture.why);
  row("pending", picture.pending);
  for (const warning of picture.warnings) row("warning", p.yellow(warning));
  row("archived", picture.archived);
  if (!picture.managed) return `${lines.join("\n")}\n`;

  lines.push("", p.bold("stages"));
  if (picture.stages.length === 0) lines.push(p.dim("  (not started yet)"));
  const more = !picture.stagesComplete && !isTerminalPhase(picture.phase) && picture.phase !== null;
  picture.stages.forEach((stage, i) => {
    const last = i === picture.stages.length - 1 && !more;
    const branch = last ? "└─ " : "├─ ";
    const icon =
      stage.state === "done"
        ? p.green("✔")
        : stage.state === "current"
          ? p.blue("▶")
          : stage.state === "ended"
            ? isSuccessPhase(picture.phase)
              ? p.green("✔")
              : p.red("■")
            : p.dim("○");
    const isHere = stage.state === "current" || stage.state === "ended";
    const note = isHere && picture.gatesSource ? p.dim(`  gates: ${picture.gatesSource}`) : "";
    lines.push(`${branch}${icon} ${stage.name}${note}`);
    if (isHere) for (const line of gateTree(picture.gates, p)) lines.push(`${last ? "   " : "│  "}${line}`);
  });
  if (more) lines.push(p.dim("└─ … later stages (this controller does not return the plan)"));
  return `${lines.join("\n")}\n`;
}

/** Gates ordered by their worst slice; under each gate its slices, worst first; passed segments summed up. */
function gateTree(gates: GateSlice[], p: Paint): string[] {
  const byGate = new Map<string, GateSlice[]>();
  for (const g of [...gates].sort(worstFirst)) byGate.set(g.gate, [...(byGate.get(g.gate) ?? []), g]);
  const shown: GateSlice[] = [];
  const hidden = new Map<GateSlice, number>();
  for (const slices of byGate.values()) {
    const passedSegments = slices.filter((s) => s.verdict === "Passed" && s.slice !== "overall");
    const keep = slices.filter((s) => !passedSegments.includes(s));
    shown.push(...keep);
    const firstPassed = passedSegments[0];
    if (firstPassed === undefined) continue;
    hidden.set(keep.at(-1) ?? firstPassed, passedSegments.length);
    if (keep.length === 0) shown.push(firstPassed);
  }
  const cells = shown.map((g) => [
    `${verdictIcon(g.verdict, p)} ${g.gate}`,
    g.slice,
    `canary ${g.candidate} vs stable ${g.stable}`,
    `n ${count(g.samples.candidate)} / ${count(g.samples.stable)}${neededText(g.needed)}`,
    [g.limit ?? "", g.etaSeconds !== null && g.verdict !== "Passed" && g.verdict !== "Failed" ? `ETA ${duration(g.etaSeconds * 1000)}` : ""]
      .filter(Boolean)
      .join(", "),
  ]);
  const rows = table(["", "", "", "", ""], cells, { ...p, bold: (t) => t })
    .split("\n")
    .slice(1, -1);
  const out: string[] = [];
  shown.forEach((g, i) => {
    out.push(`${i === shown.length - 1 ? "└─" : "├─"} ${rows[i]}`);
    const reason = g.verdict !== "Passed" && g.reason ? g.reason : null;
    const continuation = i === shown.length - 1 ? "   " : "│  ";
    if (reason) out.push(`${continuation}${p.dim(clip(reason, 160))}`);
    if (hidden.has(g)) out.push(`${continuation}${p.dim(`+ ${hidden.get(g)} more ${g.gate} segment slice${hidden.get(g) === 1 ? "" : "s"} passed`)}`);
  });
  return out;
}

/** After a change: where the rollout is now, in one line ("rollout x created: ..." with a verb). */
export function summaryLine(picture: Picture, p: Paint, verb = ""): string {
  const parts = [picture.managed ? phaseText(picture.phase, p) : "manual"];
  if (picture.managed) parts.push(`stage ${stageText(picture)}`);
  parts.push(`canary ${percent(picture.canaryPercent)}`, `shadow ${percent(picture.shadowPercent)}`);
  if (picture.revision !== null) parts.push(`revision ${picture.revision}`);
  return `rollout ${picture.name}${verb ? ` ${verb}` : ""}: ${parts.join(", ")}\n`;
}

export function renderList(pictures: Picture[], p: Paint, now: number): string {
  if (pictures.length === 0) return "no rollouts\n";
  const rows = pictures.map((r) => [
    r.name,
    r.managed ? phaseText(r.phase, p) : phaseText(null, p),
    r.managed ? stageText(r) : "-",
    `${percent(r.canaryPercent)} / ${r.observedCanaryPercent !== null ? percent(r.observedCanaryPercent) : "-"}`,
    r.modelsShort ?? "-",
    r.owner ?? "-",
    age(r.createdAt, now),
  ]);
  return table(["NAME", "PHASE", "STAGE", "SET / OBSERVED", "MODELS (STABLE → CANARY)", "OWNER", "AGE"], rows, p);
}

/** " (496 needed)" for the candidate alone, " of 496 / 900 needed" when stable's need is given too. */
function neededText(needed: GateSlice["needed"]): string {
  if (!needed || (needed.candidate === null && needed.stable === null)) return "";
  if (needed.stable === null) return ` (${count(needed.candidate)} needed)`;
  return ` of ${count(needed.candidate)} / ${count(needed.stable)} needed`;
}
