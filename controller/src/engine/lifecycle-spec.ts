/**
 * The parts of a release spec about what happens after Succeeded: the identity of the two models (given by
 * the rollout's `models` section, rollouts/models.ts) and the `finalize` block (how stable is made to serve the
 * new model, and how the controller checks it does). Parsed here so spec.ts only has to call in.
 */
import { Type, type Static } from "@sinclair/typebox";
import { REASONS_KEYWORD, type ErrorDetail } from "../errors.ts";

export const FINALIZE_DEFAULTS = Object.freeze({ verifyPercent: 5, verifyAnswers: 20, deadlineSeconds: 600, webhookTimeoutMs: 5000 });

export const FinalizeInput = Type.Object(
  {
    webhook: Type.Optional(
      Type.Object(
        {
          url: Type.String({
            pattern: "^https?://[^\\s]+$",
            maxLength: 2048,
            description: "POSTed with the rollout when it succeeds, so a CD system can make stable serve the new model; a 2xx answer starts the verification.",
            [REASONS_KEYWORD]: { pattern: "must be an http:// or https:// URL" },
          }),
          timeoutMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 60000, default: FINALIZE_DEFAULTS.webhookTimeoutMs })),
        },
        { additionalProperties: false },
      ),
    ),
    verifyPercent: Type.Optional(
      Type.Number({
        exclusiveMinimum: 0,
        maximum: 50,
        default: FINALIZE_DEFAULTS.verifyPercent,
        description: "Share of traffic sent back to stable while the controller checks that it answers the new model's version.",
      }),
    ),
    verifyAnswers: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 1_000_000,
        default: FINALIZE_DEFAULTS.verifyAnswers,
        description: "Stable answers with the new version needed in a row (no answer with another version between them).",
      }),
    ),
    deadlineSeconds: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 7 * 24 * 3600,
        default: FINALIZE_DEFAULTS.deadlineSeconds,
        description: "Without verification by then, the rollout goes back to Succeeded at 100% canary and says what stable answered.",
      }),
    ),
  },
  { additionalProperties: false, description: "After Succeeded: how stable comes to serve the new model, and how that is checked." },
);
export type FinalizeInput = Static<typeof FinalizeInput>;

export interface FinalizeSpec {
  webhook: { url: string; timeoutMs: number } | null;
  verifyPercent: number;
  verifyAnswers: number;
  deadlineSeconds: number;
}

/** The two models a rollout is about; `source` says where an answer states its version (null: nowhere, unverifiable). */
export interface ModelIdentity {
  stable: string;
  canary: string;
  source: string | null;
}

export function parseFinalize(raw: unknown, errors: ErrorDetail[]): FinalizeSpec {
  const input = (typeof raw === "object" && raw !== null ? raw : {}) as FinalizeInput;
  const verifyPercent = input.verifyPercent ?? FINALIZE_DEFAULTS.verifyPercent;
  if (Math.abs(Math.round(verifyPercent * 100) - verifyPercent * 100) > 1e-6) {
    errors.push({ path: "/finalize/verifyPercent", reason: "must have at most two decimals (0.01% is one basis point, the smallest step)" });
  }
  let webhook: FinalizeSpec["webhook"] = null;
  if (input.webhook?.url !== undefined) {
    try {
      new URL(input.webhook.url);
      webhook = { url: input.webhook.url, timeoutMs: input.webhook.timeoutMs ?? FINALIZE_DEFAULTS.webhookTimeoutMs };
    } catch {
      errors.push({ path: "/finalize/webhook/url", reason: "must be an http:// or https:// URL" });
    }
  }
  return {
    webhook,
    verifyPercent,
    verifyAnswers: input.verifyAnswers ?? FINALIZE_DEFAULTS.verifyAnswers,
    deadlineSeconds: input.deadlineSeconds ?? FINALIZE_DEFAULTS.deadlineSeconds,
  };
}

/** A spec saved before finalize existed reads as the defaults. */
export function finalizeOf(spec: { finalize?: FinalizeSpec }): FinalizeSpec {
  return spec.finalize ?? { webhook: null, ...FINALIZE_DEFAULTS };
}

/** A spec saved before model identity existed has none. */
export function modelsOf(spec: { models?: ModelIdentity | null }): ModelIdentity | null {
  return spec.models ?? null;
}
