/**
 * The engines the decision bench compares: this checkout's, and an earlier one (by default before issue 10, commit a6cca0d),
 * extracted from git at bench time (git archive into a temporary directory, node_modules linked in, then a
 * dynamic import), so no frozen copy of the old code lives in the repository.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { MetricReading, RolloutCounts } from "../../controller/src/metrics/provider.ts";

export const BEFORE_COMMIT = "a6cca0d";
const REPO = fileURLToPath(new URL("../..", import.meta.url));

/** What the bench needs of an engine; both versions have these exports with compatible shapes. */
export interface Engine {
  label: string;
  parseEngineSpec(raw: unknown, context: { hasOutputSchema: boolean; hasShadow?: boolean }): { ok: true; spec: unknown } | { ok: false; errors: unknown[] };
  initialState(params: { rollout: string; spec: unknown; segments?: Array<{ dimension: string; values: string[] }>; now: number }): EngineStateLike;
  step(
    state: EngineStateLike,
    input: { now: number; counts: MetricReading<RolloutCounts>; promql?: Record<string, MetricReading<number | null>> },
  ): {
    state: EngineStateLike;
    decisions: Array<{ kind: string; at: number; reason: string; stage: { name: string } | null }>;
  };
}

export interface EngineStateLike {
  phase: string;
  weights: { canaryPercent: number; shadowPercent: number };
  stageIndex: number;
}

async function load(root: string, label: string): Promise<Engine> {
  const url = (file: string) => pathToFileURL(join(root, "controller/src/engine", file)).href;
  const [spec, state, step] = await Promise.all([import(url("spec.ts")), import(url("state.ts")), import(url("step.ts"))]);
  return { label, parseEngineSpec: spec.parseEngineSpec, initialState: state.initialState, step: step.step };
}

export function currentEngine(): Promise<Engine> {
  return load(REPO, "after");
}

/** The engine at `commit` (default BEFORE_COMMIT), and a function removing its temporary copy. */
export async function engineBefore(commit = BEFORE_COMMIT): Promise<{ engine: Engine; cleanup: () => void }> {
  const { dir, cleanup } = checkoutBefore(commit);
  try {
    return { engine: await load(dir, `before (${commit})`), cleanup };
  } catch (error) {
    cleanup();
    throw error;
  }
}

/** Any module of the engine at BEFORE_COMMIT (e.g. "statistics.ts"), from a temporary copy. */
export async function engineModuleBefore<T>(file: string): Promise<{ module: T; cleanup: () => void }> {
  const { dir, cleanup } = checkoutBefore();
  try {
    return { module: (await import(pathToFileURL(join(dir, "controller/src/engine", file)).href)) as T, cleanup };
  } catch (error) {
    cleanup();
    throw error;
  }
}

function checkoutBefore(commit = BEFORE_COMMIT): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "modelroll-engine-before-"));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  try {
    const archive = execFileSync("git", [
      "-C",
      REPO,
      "archive",
      commit,
      // The whole controller source: later engines import a few top-level files (secrets.ts, errors.ts, net.ts).
      "controller/src",
    ]);
    execFileSync("tar", ["-x", "-C", dir], { input: archive });
    symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"), "dir");
    return { dir, cleanup };
  } catch (error) {
    cleanup();
    throw new Error(`bench: cannot extract the engine at ${commit} from git (a clone with that commit is needed): ${(error as Error).message}`);
  }
}
