// The primary's answer to a routed request, from its headers to its end: who reads it (output analysis, the
// identity check when the version is in the body, the shadow exchange) and what they learn from one parse.
import { ActiveRollout } from "./active";
import { OutputConfig } from "./config-model";
import { BodyCopy } from "./body-copy";
import { summarizeAnswer } from "./comparison";
import { countUnanalyzed, parseAnswer, recordAnalysis, schemaVerdict } from "./analysis";
import { ShadowExchange } from "./exchange";
import { versionInDoc } from "./identity";
import { VariantMetrics } from "./stats";

export class PrimaryAnswer {
  /** The body, copied as it passes (never held), when the answer is read at its end. */
  copy: BodyCopy | null = null;
  /** The version is to be read from the body (identity.ts) and has not been counted yet. */
  private versionPending: bool;

  constructor(
    public rollout: ActiveRollout,
    public variant: i32,
    /** Where the analysis is counted: the request's slices (their output metrics exist when the rollout analyzes). */
    public slices: Array<VariantMetrics>,
    versionInBody: bool,
    /** The mirrored call this answer is compared with, if the request was mirrored. */
    public exchange: ShadowExchange | null,
  ) {
    this.versionPending = versionInBody;
  }

  get output(): OutputConfig {
    return this.rollout.config.output;
  }

  /** Nothing needs the body: no analysis, no version in it, no comparison. */
  get unwanted(): bool {
    return !this.output.analyze && !this.versionPending && this.exchange === null;
  }

  /** The answer is not read (UNANALYZED_* reason): its version counts as missing, the analysis counts why. */
  notRead(reason: i32): void {
    this.versionUnread();
    if (this.output.analyze) countUnanalyzed(this.slices, reason);
  }

  /** The whole answer, parsed once for the identity check, the analysis and the comparison; returns its schema verdict. */
  read(body: ArrayBuffer): i32 {
    const parsed = parseAnswer(body);
    const doc = parsed.value;
    if (this.versionPending) {
      this.versionPending = false;
      const models = this.rollout.config.models;
      if (models !== null) this.rollout.identity.note(this.variant, versionInDoc(doc, models));
    }
    const output = this.output;
    const verdict = schemaVerdict(output, parsed);
    if (output.analyze) recordAnalysis(this.slices, output, doc, verdict);
    const exchange = this.exchange;
    if (exchange !== null) summarizeAnswer(doc, output, exchange.primary);
    this.ended();
    return verdict;
  }

  /** The answer's last byte passed (read or not): the exchange's primary is timed to this moment. */
  ended(): void {
    const exchange = this.exchange;
    if (exchange !== null && !exchange.primary.done) exchange.primaryAnswered();
  }

  private versionUnread(): void {
    if (!this.versionPending) return;
    this.versionPending = false;
    this.rollout.identity.note(this.variant, null);
  }
}
