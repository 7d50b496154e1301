// A streamed LLM answer read as it passes: Server-Sent Events (`text/event-stream`: `data: {chunk}` lines,
// `data: [DONE]` at the end) or NDJSON (one chunk a line). One pass over the bytes; what is kept is the line being
// read when a chunk ends inside it, and the assembled message (llm-message.ts), both bounded by `limit`, never
// the answer's bytes. Pure: the caller passes the time of each body chunk and does the counting.
//
// Rules, as OpenAI-compatible servers (vLLM, TGI, SGLang, llama.cpp, Ollama) write them:
//  - lines end with "\n" ("\r\n" too); SSE comments (":...") and fields other than data are ignored;
//  - each `data:` line is one chunk (a JSON value split over two data lines of one event counts as malformed);
//  - a line longer than `limit` is skipped to its end and counted as one malformed chunk;
//  - a last line without its newline is read at the end of the stream.
import { parseJsonRange } from "./json";
import { AssembledMessage, CHUNK_MALFORMED, CHUNK_TOKEN } from "./llm-message";

export const STREAM_NONE: i32 = 0;
export const STREAM_SSE: i32 = 1;
export const STREAM_NDJSON: i32 = 2;

/** Chunks nest at most this deep; deeper ones are malformed. */
const MAX_CHUNK_DEPTH: i32 = 32;

/** The stream format a content-type names (parameters ignored), or STREAM_NONE. */
export function streamKindOf(contentType: string | null): i32 {
  if (contentType === null) return STREAM_NONE;
  let v = contentType.toLowerCase();
  const semicolon = v.indexOf(";");
  if (semicolon >= 0) v = v.substring(0, semicolon);
  v = v.trim();
  if (v == "text/event-stream") return STREAM_SSE;
  if (v == "application/x-ndjson" || v == "application/ndjson" || v == "application/jsonl" || v == "application/x-jsonlines" || v == "application/jsonlines")
    return STREAM_NDJSON;
  return STREAM_NONE;
}

export class StreamReader {
  message: AssembledMessage;
  /** Chunks read (of the chunk shape or not). */
  chunks: i32 = 0;
  /** Chunks that were not JSON of a chunk shape (and over-long lines). */
  malformed: i32 = 0;
  /** SSE: `data: [DONE]` arrived. */
  done: bool = false;
  /** Chunks that carried content or a tool-call piece, and the times of the first and the last of them. */
  tokenChunks: i32 = 0;
  firstTokenNs: u64 = 0;
  lastTokenNs: u64 = 0;
  /** The end was read (end of stream); false when the stream went away before. */
  ended: bool = false;

  private pending: Uint8Array;
  private pendingLength: i32 = 0;
  private skippingLine: bool = false;

  constructor(
    public kind: i32,
    /** Bytes of a line kept across chunks at most; also the bound (in UTF-16 units) of the assembled text. */
    public limit: i32,
  ) {
    this.message = new AssembledMessage(limit);
    this.pending = new Uint8Array(0);
  }

  /** Reads one body chunk, received at `nowNs`. */
  feed(bytes: ArrayBuffer, nowNs: u64): void {
    const base = changetype<usize>(bytes);
    const len = bytes.byteLength;
    let start = 0;
    for (let i = 0; i < len; i++) {
      if (load<u8>(base + <usize>i) != 0x0a) continue;
      this.lineEnds(base + <usize>start, i - start, nowNs);
      start = i + 1;
    }
    if (start < len) this.keepPartial(base + <usize>start, len - start);
  }

  /** The stream ended: a last line without its newline is read. */
  end(nowNs: u64): void {
    if (this.pendingLength > 0 && !this.skippingLine) this.line(changetype<usize>(this.pending.buffer), this.pendingLength, nowNs);
    else if (this.skippingLine) this.malformed++;
    this.pendingLength = 0;
    this.skippingLine = false;
    this.ended = true;
  }

  /** Cut off: no finish reason, or (SSE) no [DONE]; a stream that went away before its end is cut off too. */
  get cutOff(): bool {
    return !this.ended || this.message.finishReason.length == 0 || (this.kind == STREAM_SSE && !this.done);
  }

  /** Time to first token in microseconds from `startNs`, or -1 when no token arrived. */
  ttftUs(startNs: u64): i64 {
    if (this.tokenChunks == 0 || startNs == 0 || this.firstTokenNs < startNs) return -1;
    return <i64>((this.firstTokenNs - startNs) / 1000);
  }

  /**
   * Time per output token in microseconds: first to last token over the tokens after the first, counting
   * completion tokens from usage when the stream gave them, else the chunks that carried tokens; -1 when
   * fewer than two.
   */
  tpotUs(): i64 {
    const tokens = this.message.completionTokens;
    const count: f64 = !isNaN(tokens) && tokens >= 2 ? tokens : <f64>this.tokenChunks;
    if (count < 2 || this.tokenChunks == 0 || this.lastTokenNs < this.firstTokenNs) return -1;
    return <i64>(<f64>(this.lastTokenNs - this.firstTokenNs) / 1000 / (count - 1));
  }

  /** A newline at the end of `len` bytes at `at`: with what was kept of the line, one whole line. */
  private lineEnds(at: usize, len: i32, nowNs: u64): void {
    if (this.skippingLine) {
      this.skippingLine = false;
      this.pendingLength = 0;
      this.malformed++;
      return;
    }
    if (this.pendingLength == 0) {
      this.line(at, len, nowNs);
      return;
    }
    if (!this.append(at, len)) {
      this.pendingLength = 0;
      this.malformed++;
      return;
    }
    this.line(changetype<usize>(this.pending.buffer), this.pendingLength, nowNs);
    this.pendingLength = 0;
  }

  private keepPartial(at: usize, len: i32): void {
    if (this.skippingLine) return;
    if (!this.append(at, len)) {
      this.pendingLength = 0;
      this.skippingLine = true;
    }
  }

  /** Appends to the kept line; false when it would pass the limit. */
  private append(at: usize, len: i32): bool {
    const need = this.pendingLength + len;
    if (need > this.limit) return false;
    if (need > this.pending.length) {
      let size = this.pending.length < 256 ? 256 : this.pending.length * 2;
      while (size < need) size *= 2;
      if (size > this.limit) size = this.limit;
      const grown = new Uint8Array(size);
      memory.copy(changetype<usize>(grown.buffer), changetype<usize>(this.pending.buffer), <usize>this.pendingLength);
      this.pending = grown;
    }
    memory.copy(changetype<usize>(this.pending.buffer) + <usize>this.pendingLength, at, <usize>len);
    this.pendingLength = need;
    return true;
  }

  /** One line without its newline. */
  private line(at: usize, len: i32, nowNs: u64): void {
    if (len > 0 && load<u8>(at + <usize>(len - 1)) == 0x0d) len--;
    if (this.kind == STREAM_SSE) {
      // "data:" then an optional space; empty lines end events, other fields are ignored.
      if (len < 5 || load<u8>(at) != 0x64 || load<u8>(at + 1) != 0x61 || load<u8>(at + 2) != 0x74 || load<u8>(at + 3) != 0x61 || load<u8>(at + 4) != 0x3a)
        return;
      at += 5;
      len -= 5;
      if (len > 0 && load<u8>(at) == 0x20) {
        at++;
        len--;
      }
      if (isDone(at, len)) {
        this.done = true;
        return;
      }
    } else if (isBlank(at, len)) return;
    this.chunk(at, len, nowNs);
  }

  private chunk(at: usize, len: i32, nowNs: u64): void {
    this.chunks++;
    const parsed = parseJsonRange(at, len, MAX_CHUNK_DEPTH);
    const value = parsed.value;
    const r = value === null ? CHUNK_MALFORMED : this.message.applyChunk(value);
    if (r == CHUNK_MALFORMED) {
      this.malformed++;
      return;
    }
    if (r != CHUNK_TOKEN) return;
    if (this.tokenChunks == 0) this.firstTokenNs = nowNs;
    this.lastTokenNs = nowNs;
    this.tokenChunks++;
  }
}

function isDone(at: usize, len: i32): bool {
  while (len > 0 && load<u8>(at + <usize>(len - 1)) == 0x20) len--;
  return (
    len == 6 &&
    load<u8>(at) == 0x5b &&
    load<u8>(at + 1) == 0x44 &&
    load<u8>(at + 2) == 0x4f &&
    load<u8>(at + 3) == 0x4e &&
    load<u8>(at + 4) == 0x45 &&
    load<u8>(at + 5) == 0x5d
  );
}

function isBlank(at: usize, len: i32): bool {
  for (let i = 0; i < len; i++) {
    const c = load<u8>(at + <usize>i);
    if (c != 0x20 && c != 0x09) return false;
  }
  return true;
}
