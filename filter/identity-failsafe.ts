// The identity check on the data path, per rollout and worker: each answer's stated version is counted, and a
// canary answering another model than declared trips this worker's fail-safe, which sends the rollout's canary
// requests to stable until the rollout's weights or models change (the parsing and comparing: identity.ts).
import { incrementMetric, log, LogLevel } from "./sdk/host";
import { RolloutConfig } from "./config-model";
import { classifyVersion, IdentityMetrics, isCanaryMismatch, MODEL_NAMES, sameIdentityConfig } from "./identity";
import { VARIANT_CANARY, VARIANT_STABLE } from "./stats";

export class IdentityFailsafe {
  /** This worker saw the canary answer another model; its canary share goes to stable. */
  tripped: bool = false;
  constructor(
    public config: RolloutConfig,
    public metrics: IdentityMetrics | null,
  ) {}

  /** The variant a request picked by weight goes to: stable instead of a tripped canary, counted. */
  route(variant: i32): i32 {
    if (variant != VARIANT_CANARY || !this.tripped) return variant;
    const m = this.metrics;
    if (m !== null) incrementMetric(m.failsafe);
    return VARIANT_STABLE;
  }

  /** Counts an answer's stated version (null: none stated, or unreadable); a canary stating another model trips. */
  note(variant: i32, version: string | null): void {
    const models = this.config.models;
    const m = this.metrics;
    if (models === null || m === null) return;
    const cls = classifyVersion(models, version);
    incrementMetric(m.answers[variant][cls]);
    if (variant != VARIANT_CANARY || !isCanaryMismatch(cls) || this.tripped) return;
    this.tripped = true;
    log(
      LogLevel.Warn,
      "modelroll: rollout " +
        this.config.name +
        ": the canary answered model version '" +
        (version === null ? "" : version) +
        "' (" +
        MODEL_NAMES[cls] +
        "; declared " +
        models.canary +
        "); this worker sends the rollout's traffic to stable until its config changes",
    );
  }

  /** A worker's fail-safe stays on across config updates that leave the rollout's weights and models alone. */
  carryFrom(previous: IdentityFailsafe): void {
    const a = previous.config;
    const b = this.config;
    if (previous.tripped && a.name == b.name && sameIdentityConfig(a.models, b.models, a.canaryBasisPoints, b.canaryBasisPoints)) this.tripped = true;
  }
}
