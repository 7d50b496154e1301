/**
 * The finalize webhook (spec finalize.webhook): when a rollout has Succeeded, the controller POSTs it to the
 * URL the spec names, so a CD system can make the stable deployment serve the new model. A 2xx answer means
 * "done or under way": the rollout goes Finalizing (the verification then waits for stable to answer the
 * new version). A failure is recorded on the rollout (attempts, last error, next try) and retried with
 * backoff; deliveries run beside the engine's ticks and never hold them up.
 */
import type { FastifyBaseLogger } from "fastify";
import { applyCommand, finalizeOf, Phase } from "../engine/index.ts";
import { toView } from "../http/rollout-view.ts";
import type { UpstreamLookup } from "../metrics/envoy-upstreams.ts";
import type { HookStatus, Rollout } from "../rollouts/model.ts";
import type { RolloutStore } from "../rollouts/store.ts";
import { redactUrl, scrubUrl } from "../secrets.ts";

interface FinalizeHookOptions {
  store: RolloutStore;
  clock?: () => Date;
  log?: FastifyBaseLogger;
  /** First retry delay; doubles per failure up to retryMaxMs. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** What each Envoy cluster reaches, for the view's `variants`. */
  upstreams?: UpstreamLookup;
}

const HOOK_ACTOR = "finalize-webhook";

export class FinalizeHooks {
  readonly #upstreams: UpstreamLookup | undefined;
  readonly #store: RolloutStore;
  readonly #clock: () => Date;
  readonly #log: FastifyBaseLogger | undefined;
  readonly #retryBaseMs: number;
  readonly #retryMaxMs: number;
  readonly #inFlight = new Map<string, Promise<void>>();

  constructor(options: FinalizeHookOptions) {
    this.#store = options.store;
    this.#clock = options.clock ?? (() => new Date());
    this.#log = options.log;
    this.#retryBaseMs = options.retryBaseMs ?? 1000;
    this.#retryMaxMs = options.retryMaxMs ?? 60_000;
    this.#upstreams = options.upstreams;
  }

  /** Starts every delivery that is due; returns them (the driver does not wait for them). */
  run(now: number = this.#clock().getTime()): Promise<void>[] {
    const started: Promise<void>[] = [];
    for (const rollout of this.#store.list()) {
      const name = rollout.spec.name;
      if (this.#inFlight.has(name) || !isDue(rollout, now)) continue;
      const delivery = this.#deliver(rollout)
        .catch((error: Error) => this.#log?.error({ err: error, rollout: name }, "finalize webhook: recording the delivery failed"))
        .finally(() => this.#inFlight.delete(name));
      this.#inFlight.set(name, delivery);
      started.push(delivery);
    }
    return started;
  }

  /** Waits for the deliveries in flight (shutdown). */
  async settle(): Promise<void> {
    await Promise.all([...this.#inFlight.values()]);
  }

  async #deliver(rollout: Rollout): Promise<void> {
    const name = rollout.spec.name;
    // isDue chose it: a managed rollout with a webhook; re-read here so a change since is not a crash.
    const hook = rollout.engine ? finalizeOf(rollout.engine.state.spec).webhook : undefined;
    if (!hook) return;
    const previous = rollout.finalizeHook ?? { attempts: 0, lastAttemptAt: null, lastError: null, nextAttemptAt: null, deliveredAt: null };
    const attemptAt = this.#clock();
    let error: string | null = null;
    try {
      const response = await fetch(hook.url, {
        method: "POST",
        headers: { "content-type": "application/json", "user-agent": "modelroll-controller" },
        body: JSON.stringify(payload(rollout, this.#upstreams)),
        signal: AbortSignal.timeout(hook.timeoutMs),
      });
      await response.arrayBuffer().catch(() => undefined);
      if (response.status < 200 || response.status > 299) error = `answered ${response.status}`;
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      error = (e as Error).name === "TimeoutError" ? `no answer within ${hook.timeoutMs} ms` : (cause?.code ?? cause?.message ?? (e as Error).message);
    }
    const current = this.#store.find(name);
    // Deleted meanwhile, or another rollout of the same name: nothing to record.
    if (!current?.engine || current.createdAt.getTime() !== rollout.createdAt.getTime()) return;
    const attempts = previous.attempts + 1;
    if (error !== null) {
      const delay = Math.min(this.#retryMaxMs, this.#retryBaseMs * 2 ** (attempts - 1));
      const status: HookStatus = {
        attempts,
        lastAttemptAt: attemptAt.toISOString(),
        lastError: scrubUrl(error, hook.url),
        nextAttemptAt: new Date(attemptAt.getTime() + delay).toISOString(),
        deliveredAt: null,
      };
      this.#log?.warn({ rollout: name, url: redactUrl(hook.url), attempts, error: scrubUrl(error, hook.url) }, "finalize webhook failed; retrying");
      this.#store.recordHook(name, status);
      return;
    }
    this.#store.recordHook(name, {
      attempts,
      lastAttemptAt: attemptAt.toISOString(),
      lastError: null,
      nextAttemptAt: null,
      deliveredAt: this.#clock().toISOString(),
    });
    const engine = this.#store.get(name).engine;
    // An operator may have finalized or rolled back meanwhile: then the delivery is only recorded.
    if (engine === null || engine.state.phase !== Phase.Succeeded) return;
    const result = applyCommand(
      engine.state,
      { type: "finalize", actor: HOOK_ACTOR, reason: `${redactUrl(hook.url)} answered 2xx` },
      this.#clock().getTime(),
      engine.lastEvaluation,
    );
    if (result.ok) this.#store.applyEngine(name, result, { command: true });
  }
}

function isDue(rollout: Rollout, now: number): boolean {
  const engine = rollout.engine;
  if (engine === null || engine.state.phase !== Phase.Succeeded || finalizeOf(engine.state.spec).webhook === null) return false;
  const status = rollout.finalizeHook;
  if (status?.deliveredAt) return false;
  return status?.nextAttemptAt == null || Date.parse(status.nextAttemptAt) <= now;
}

/** What the CD system gets: which rollout, which model stable must now serve, and where to read more. */
function payload(rollout: Rollout, upstreams?: UpstreamLookup): Record<string, unknown> {
  const models = rollout.spec.models;
  return {
    event: "rollout.succeeded",
    rollout: rollout.spec.name,
    pathPrefix: rollout.spec.match.pathPrefix,
    action: models ? `make the stable deployment serve ${models.canary} (it serves ${models.stable})` : "make the stable deployment serve the canary's model",
    models: models ? { stable: models.stable, canary: models.canary } : null,
    finalize: { path: `/v1/rollouts/${rollout.spec.name}/finalize`, verifiedBy: models?.versionField ?? models?.versionHeader ?? null },
    view: toView(rollout, upstreams),
  };
}
