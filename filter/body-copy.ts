// A body copied chunk by chunk as it passes (never held), up to a limit: the request copy (shadow, guard) and the
// primary's answer (read at its end) use it.

/** Collects body chunks up to a limit; past it the copy is abandoned (too large to send again or to read). */
export class BodyCopy {
  chunks: Array<ArrayBuffer> = [];
  size: i32 = 0;
  overflowed: bool = false;
  constructor(public limit: i32) {}

  add(chunk: ArrayBuffer): void {
    if (this.overflowed) return;
    if (this.size + chunk.byteLength > this.limit) {
      this.overflowed = true;
      this.chunks = [];
      return;
    }
    this.chunks.push(chunk);
    this.size += chunk.byteLength;
  }

  join(): ArrayBuffer {
    const out = new ArrayBuffer(this.size);
    let offset: usize = 0;
    for (let i = 0; i < this.chunks.length; i++) {
      const c = this.chunks[i];
      memory.copy(changetype<usize>(out) + offset, changetype<usize>(c), <usize>c.byteLength);
      offset += <usize>c.byteLength;
    }
    return out;
  }
}
