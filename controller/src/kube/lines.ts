/** A watch answer as its lines: one JSON event per line, a line at most `maxLine` bytes. */
import type { Readable } from "node:stream";
import { KubeError } from "./errors.ts";

export async function* splitLines(stream: Readable, maxLine: number): AsyncGenerator<string> {
  let pending: Buffer[] = [];
  let pendingSize = 0;
  for await (const chunk of stream) {
    let data = chunk as Buffer;
    let newline = data.indexOf(10);
    while (newline !== -1) {
      pending.push(data.subarray(0, newline));
      yield Buffer.concat(pending).toString("utf8");
      pending = [];
      pendingSize = 0;
      data = data.subarray(newline + 1);
      newline = data.indexOf(10);
    }
    if (data.length > 0) {
      pendingSize += data.length;
      if (pendingSize > maxLine) throw new KubeError(0, "TooLarge", `Kubernetes watch event larger than ${maxLine} bytes`);
      pending.push(data);
    }
  }
  if (pendingSize > 0) yield Buffer.concat(pending).toString("utf8");
}
