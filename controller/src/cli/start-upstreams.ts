// `npm start`'s model servers, as the controller and the user need them: the cluster -> URL map the controller
// keeps each rollout's tested upstreams by (release/upstream-guard.ts), the probe that finds a server that does
// not answer before any user is routed to it, and the start banner's line per resumed rollout.
import { request } from "node:http";
import { modelClusters } from "../envoy/models-bootstrap.ts";
import type { Rollout } from "../rollouts/model.ts";
import { upstreamLine } from "../rollouts/upstream-check.ts";
import type { ModelEntry } from "./models-file.ts";
import type { PlanResult } from "./start-plan.ts";

type StartPlan = Extract<PlanResult, { plan: unknown }>["plan"];

/** A model server npm start routes to, with the flag (or models file field) that named it. */
export interface NamedUpstream {
  what: string;
  url: string;
}

const urlOf = (target: StartPlan["stable"]): string => ("demo" in target ? `http://${target.demo.host}:${target.demo.port}` : target.url);

/** Envoy cluster -> the URL it reaches, for every cluster npm start's bootstrap has. */
export function declaredUpstreams(plan: StartPlan, models: readonly ModelEntry[] | null): Record<string, string> {
  if (models) {
    return Object.fromEntries(
      models.flatMap((m) => {
        const c = modelClusters(m.name);
        return [
          [c.stable, m.urls.stable],
          [c.canary, m.urls.canary],
          [c.shadow, m.urls.shadow ?? m.urls.canary],
        ];
      }),
    );
  }
  const canary = urlOf(plan.canary);
  return { stable: urlOf(plan.stable), canary, shadow: plan.shadow?.url ?? canary };
}

/** The given model servers (the demo ones are started by npm start itself), each with what named it. */
export function givenUpstreams(plan: StartPlan, models: readonly ModelEntry[] | null, modelsFile?: string): NamedUpstream[] {
  if (models) {
    return models.flatMap((m, i) =>
      (["stable", "canary", "shadow"] as const).flatMap((field) => {
        const url = m.urls[field];
        return url ? [{ what: `${modelsFile ?? "--models"} /models/${i}/${field} (${m.name})`, url }] : [];
      }),
    );
  }
  const out: NamedUpstream[] = [];
  if (!("demo" in plan.stable)) out.push({ what: "--stable", url: plan.stable.url });
  if (!("demo" in plan.canary)) out.push({ what: "--canary", url: plan.canary.url });
  if (plan.shadow) out.push({ what: "--shadow", url: plan.shadow.url });
  return out;
}

/**
 * null when something answers HTTP at the URL (any status: a model server need not serve GET /), else why not
 * (connection refused, no answer within timeoutMs, a host name that does not resolve, not HTTP).
 */
export function probe(url: string, timeoutMs = 2000): Promise<string | null> {
  return new Promise((resolve) => {
    const req = request(url, { method: "GET", timeout: timeoutMs, headers: { "user-agent": "modelroll-start-probe" } }, (res) => {
      res.resume();
      resolve(null);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", (error: NodeJS.ErrnoException) =>
      resolve(error.code && !error.message.includes(error.code) ? `${error.code}: ${error.message}` : error.message),
    );
    req.end();
  });
}

/** One line per given model server that does not answer, naming the flag and the URL. */
export async function unreachableUpstreams(upstreams: readonly NamedUpstream[], timeoutMs?: number): Promise<string[]> {
  const results = await Promise.all(upstreams.map(async (u) => ({ u, why: await probe(u.url, timeoutMs) })));
  return results.filter((r) => r.why !== null).map((r) => `${r.u.what} ${r.u.url}: does not answer (${r.why})`);
}

export const PROBE_ADVICE =
  "Start the model server first, or fix the URL; `--no-probe` starts anyway (users routed to a server that does not answer get 503s).";

/** The banner's lines about the rollouts resumed from the state file: one per rollout, what it was tested against, or why it is held. */
export function resumedLines(rollouts: readonly Rollout[]): string {
  return rollouts.map((r) => `    ${upstreamLine(r)}\n`).join("");
}
