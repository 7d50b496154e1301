// The demo model npm start runs, by kind: the classifier (model-server.ts) or the OpenAI-style LLM (llm-model.ts).
import { startLlmServer } from "./llm-model.ts";
import { startModelServer } from "./model-server.ts";

/** `npm start -- --demo KIND`: which demo models start when no --stable/--canary are given. */
export const DEMO_KINDS = ["classifier", "llm"] as const;
export type DemoKind = (typeof DEMO_KINDS)[number];

export interface DemoModelRequest {
  version: string;
  host: string;
  port: number;
  /** Absent: the classifier. */
  kind?: DemoKind;
}

export interface RunningDemoModel {
  url: string;
  close(): Promise<void>;
}

export function startDemoModel(request: DemoModelRequest): Promise<RunningDemoModel> {
  const { kind, ...where } = request;
  return kind === "llm" ? startLlmServer({ ...where, modelName: "demo-llm" }) : startModelServer(where);
}
