// The setup both validation benches measure on: one Envoy (1 worker) with the filter in front of a fixed
// upstream, and for 1, 16 and 256 KB answers two rollouts on the same bodies: `plainN` only routes, `valN`
// adds output analysis and an output schema.
import type { EnvoyProcess } from "../controller/src/envoy/process.ts";
import { startFixedAnswerStack } from "./fixed-stack.ts";

export const SIZES_KB = [1, 16, 256];

const schema = {
  type: "object",
  required: ["prediction", "confidence", "model_version"],
  properties: {
    prediction: { enum: ["approve", "review", "decline"] },
    confidence: { type: "number", minimum: 0, maximum: 1 },
    model_version: { type: "string" },
    items: { type: "array", items: { type: "object", properties: { id: { type: "integer" }, label: { type: "string" }, score: { type: "number" } } } },
  },
};

/** A valid model answer of about `kb` KB: the seed's fields plus per-item scores. */
function answer(kb: number): string {
  const items: Array<{ id: number; label: string; score: number }> = [];
  let body = "";
  for (let i = 0; body.length < kb * 1024; i++) {
    items.push({ id: i, label: ["approve", "review", "decline"][i % 3], score: Math.round((i % 100) * 7.3) / 1000 });
    if (i % 8 === 0) body = JSON.stringify({ prediction: "approve", confidence: 0.93, model_version: "v1", items });
  }
  return JSON.stringify({ prediction: "approve", confidence: 0.93, model_version: "v1", items });
}

export interface ValidationStack {
  /** The filter's listener: `${base}/plainN/p` and `${base}/valN/p`. */
  base: string;
  controllerUrl: string;
  /** The Envoy running the filter. */
  envoy: EnvoyProcess;
  /** The answer body per size in KB. */
  bodies: Record<number, string>;
  stop(): Promise<void>;
}

/** `wasmPath`: another build of the filter (default build/filter.wasm), e.g. to measure a baseline in the same run. */
export async function startValidationStack(wasmPath?: string): Promise<ValidationStack> {
  const bodies: Record<number, string> = Object.fromEntries(SIZES_KB.map((kb) => [kb, answer(kb)]));
  const output = { schema, labels: ["approve", "review", "decline"], maxBodyBytes: 1024 * 1024 };
  const stack = await startFixedAnswerStack({
    routes: SIZES_KB.flatMap((kb) => [
      { prefix: `/plain${kb}/`, body: bodies[kb] },
      { prefix: `/val${kb}/`, body: bodies[kb] },
    ]),
    rollouts: SIZES_KB.flatMap((kb) => [
      { name: `plain${kb}`, match: { pathPrefix: `/plain${kb}/` }, stickyKey: { header: "x-user-id" } },
      { name: `val${kb}`, match: { pathPrefix: `/val${kb}/` }, stickyKey: { header: "x-user-id" }, output },
    ]),
    ...(wasmPath ? { wasmPath } : {}),
  });
  return { base: stack.base, controllerUrl: stack.controllerUrl, envoy: stack.envoy, bodies, stop: stack.stop };
}
