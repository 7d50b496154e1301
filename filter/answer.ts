// The primary's answer to a routed request, from its headers to its end: who reads it (output analysis, the
// identity check when the version is in the body, the shadow exchange) and what they learn from one parse.
import { ActiveRollout } from "./active";
import { OutputConfig } from "./config-model";
import { BodyCopy } from "./body-copy";
import { summarizeAnswer } from "./comparison";
import { countUnanalyzed, docVerdict, parseAnswer, recordAnalysis, recordStream, schemaVerdict } from "./analysis";
import { StreamReader } from "./llm-stream";
import { JsonValue } from "./json";
import { UNANALYZED_TOO_LARGE } from "./output";
import { REASON_NOT_JSON } from "./schema-results";
import { noteGarbage } from "./sdk/dispatch";
import { ShadowExchange } from "./exchange";
import { versionInDoc } from "./identity";
import { VariantMetrics } from "./stats";

export class PrimaryAnswer {
  /** The body, copied as it passes (never held), when the answer is read at its end. */
  copy: BodyCopy | null = null;
  /** A streamed answer (SSE or NDJSON), read as it passes; its message is assembled, never its bytes kept. */
  stream: StreamReader | null = null;
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

  /** One chunk of a streamed answer, received at `nowNs`. */
  feedStream(reader: StreamReader, chunk: ArrayBuffer, nowNs: u64): void {
    reader.feed(chunk, nowNs);
    // About what the chunks' parse trees weigh; they are garbage once read.
    noteGarbage(<usize>chunk.byteLength * 16);
  }

  /**
   * The stream ended (`gone`: the stream went away before its end, a cut-off): its own counts, then the
   * assembled message read like a plain answer: identity (its `model`), schema, analysis, the comparison.
   * A stream with a malformed chunk has the schema verdict not_json; one whose text passed the limit is
   * counted too_large and not analyzed.
   */
  endStream(reader: StreamReader, startNs: u64, nowNs: u64, gone: bool): void {
    this.stream = null;
    if (!gone) reader.end(nowNs);
    const output = this.output;
    if (output.analyze) recordStream(this.slices, reader, startNs);
    const message = reader.message;
    const doc: JsonValue | null = message.overflowed ? null : message.toDoc();
    if (this.versionPending) {
      this.versionPending = false;
      const models = this.rollout.config.models;
      if (models !== null) this.rollout.identity.note(this.variant, message.model.length > 0 ? versionInDoc(doc, models) : null);
    }
    if (output.analyze) {
      if (doc === null) countUnanalyzed(this.slices, UNANALYZED_TOO_LARGE);
      else recordAnalysis(this.slices, output, doc, reader.malformed > 0 && output.schema !== null ? REASON_NOT_JSON : docVerdict(output, doc), true);
    }
    const exchange = this.exchange;
    if (exchange !== null) summarizeAnswer(doc, output, exchange.primary);
    this.ended();
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
