/**
 * Notification targets as a rollout spec (its `notifications` section) or the controller's configuration
 * names them: where the rollout's events are POSTed, in which format, and which events. Pure (TypeBox only):
 * the engine's spec parser calls in here, as it does for finalize, and `modelroll lint` runs it offline.
 *
 * A target's URL is a secret (Slack and Teams incoming webhooks carry their token in the path): it is kept in
 * the state file and sent to nowhere but the target itself; every view shows it redacted (secrets.ts).
 */
import { Type, type Static } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { REASONS_KEYWORD, type ErrorDetail } from "../errors.ts";
import { isRedacted } from "../secrets.ts";

/** The events a target can ask for; the payload's `type` is `rollout.<event>`. */
const NOTIFICATION_EVENTS = [
  "started",
  "stage_advanced",
  "paused",
  "resumed",
  "deadline_passed",
  "awaiting_review",
  "rolled_back",
  "succeeded",
  "canary_withdrawn",
  "finalize_not_verified",
  "finalized",
  "gate_error",
  "gate_recovered",
] as const;
export type NotificationEvent = (typeof NOTIFICATION_EVENTS)[number];

const TARGET_FORMATS = ["webhook", "slack", "teams"] as const;
export type TargetFormat = (typeof TARGET_FORMATS)[number];

export const NOTIFY_DEFAULTS = Object.freeze({ timeoutMs: 5000, gateErrorAfterSeconds: 120, maxTargets: 10 });

const TARGET_NAME_PATTERN = "^[a-z0-9][a-z0-9_-]{0,62}$";

export const NotificationTargetInput = Type.Object(
  {
    name: Type.Optional(
      Type.String({
        pattern: TARGET_NAME_PATTERN,
        description: "How the target is named in delivery records and logs (default <format>-<index>).",
        [REASONS_KEYWORD]: { pattern: "must be 1 to 63 of a-z, 0-9, '_' and '-', starting with a letter or digit" },
      }),
    ),
    format: Type.Optional(
      Type.Union(
        TARGET_FORMATS.map((f) => Type.Literal(f)),
        {
          default: "webhook",
          description:
            "webhook: the documented JSON event; slack: a Slack incoming-webhook message; teams: a Microsoft Teams (Workflows or incoming webhook) Adaptive Card message.",
        },
      ),
    ),
    url: Type.String({
      pattern: "^https?://[^\\s]+$",
      maxLength: 2048,
      description: "Where the events are POSTed. A secret: never logged, and every GET shows it redacted (a PUT sending the redacted form back keeps it).",
      [REASONS_KEYWORD]: { pattern: "must be an http:// or https:// URL" },
    }),
    events: Type.Optional(
      Type.Array(Type.Union(NOTIFICATION_EVENTS.map((e) => Type.Literal(e))), {
        minItems: 1,
        uniqueItems: true,
        description: "The events this target gets (default: all).",
      }),
    ),
    timeoutMs: Type.Optional(
      Type.Integer({
        minimum: 100,
        maximum: 60_000,
        default: NOTIFY_DEFAULTS.timeoutMs,
        description: "An answer later than this is a failed attempt (retried).",
      }),
    ),
  },
  { additionalProperties: false },
);
export type NotificationTargetInput = Static<typeof NotificationTargetInput>;

export const NotificationsInput = Type.Object(
  {
    targets: Type.Optional(Type.Array(NotificationTargetInput, { maxItems: NOTIFY_DEFAULTS.maxTargets, description: "Where this rollout's events go." })),
    controllerTargets: Type.Optional(
      Type.Boolean({ default: true, description: "Also send this rollout's events to the controller-wide targets (MODELROLL_NOTIFY_TARGETS)." }),
    ),
    gateErrorAfterSeconds: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 86_400,
        default: NOTIFY_DEFAULTS.gateErrorAfterSeconds,
        description:
          "A gate that has read Error (could not be measured) on all traffic this long is announced (gate_error), once per spell; gate_recovered when it reads again.",
      }),
    ),
  },
  { additionalProperties: false, description: "Who is told what happens to this rollout (see README, Notifications)." },
);
export type NotificationsInput = Static<typeof NotificationsInput>;

export interface NotificationTarget {
  name: string;
  format: TargetFormat;
  url: string;
  /** null: every event. */
  events: NotificationEvent[] | null;
  timeoutMs: number;
}

export interface NotificationSpec {
  targets: NotificationTarget[];
  controllerTargets: boolean;
  gateErrorAfterSeconds: number;
}

/** Targets as given (already of the schema's shape) -> normalized, with every further problem at its pointer. */
function normalizeTargets(raw: readonly NotificationTargetInput[], errors: ErrorDetail[], at: string): NotificationTarget[] {
  const targets: NotificationTarget[] = [];
  const names = new Map<string, number>();
  raw.forEach((t, index) => {
    const path = `${at}/${index}`;
    const format = t.format ?? "webhook";
    const name = t.name ?? `${format}-${index}`;
    const seen = names.get(name);
    if (seen !== undefined)
      errors.push({ path: t.name !== undefined ? `${path}/name` : path, reason: `duplicate target name '${name}' (also target ${seen})` });
    names.set(name, index);
    if (!checkUrl(t.url, `${path}/url`, errors)) return;
    targets.push({ name, format, url: t.url, events: t.events ? [...t.events] : null, timeoutMs: t.timeoutMs ?? NOTIFY_DEFAULTS.timeoutMs });
  });
  return targets;
}

/** A webhook URL a delivery can be made to; every reason without the URL itself (it may carry a token). */
export function checkUrl(url: string, path: string, errors: ErrorDetail[]): boolean {
  if (isRedacted(url)) {
    errors.push({ path, reason: "is a redacted URL as GET shows it: give the real URL (a PUT of a rollout that has it keeps the current one)" });
    return false;
  }
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new Error("scheme");
    return true;
  } catch {
    errors.push({ path, reason: "must be an http:// or https:// URL" });
    return false;
  }
}

/** A spec's `notifications` section (structure already checked) -> NotificationSpec; null when absent. */
export function parseNotifications(raw: unknown, errors: ErrorDetail[]): NotificationSpec | null {
  if (raw === undefined || raw === null || typeof raw !== "object") return null;
  const input = raw as NotificationsInput;
  return {
    targets: normalizeTargets(input.targets ?? [], errors, "/notifications/targets"),
    controllerTargets: input.controllerTargets ?? true,
    gateErrorAfterSeconds: input.gateErrorAfterSeconds ?? NOTIFY_DEFAULTS.gateErrorAfterSeconds,
  };
}

/**
 * The controller-wide targets from the environment (MODELROLL_NOTIFY_TARGETS): a JSON list of targets as in a
 * spec, or the short form `format=url,format=url` (e.g. `slack=https://hooks.slack.com/services/...`). Errors
 * name the variable and the item, never the value (it holds tokens).
 */
export function parseTargetsEnv(text: string, variable = "MODELROLL_NOTIFY_TARGETS"): { targets: NotificationTarget[] } | { error: string } {
  const trimmed = text.trim();
  if (trimmed === "") return { targets: [] };
  let list: unknown;
  if (trimmed.startsWith("[")) {
    try {
      list = JSON.parse(trimmed);
    } catch {
      return { error: `${variable}: not a JSON list (give [{"format": "slack", "url": "..."}] or slack=URL,webhook=URL)` };
    }
  } else {
    list = trimmed.split(",").map((item) => {
      const eq = item.indexOf("=");
      const format = eq > 0 ? item.slice(0, eq).trim() : "webhook";
      return { format, url: (eq > 0 ? item.slice(eq + 1) : item).trim() };
    });
  }
  const checked = checkTargetList(list, "");
  if ("errors" in checked) return { error: `${variable}: ${checked.errors.map((e) => `${e.path || "(list)"} ${e.reason}`).join("; ")}` };
  return checked;
}

/** A list of targets in the spec's form, checked as a spec's would be; pointers from `at`. */
export function checkTargetList(list: unknown, at: string): { targets: NotificationTarget[] } | { errors: ErrorDetail[] } {
  const schema = Type.Array(NotificationTargetInput, { maxItems: 50 });
  const errors: ErrorDetail[] = [];
  for (const e of Value.Errors(schema, list)) {
    // The value is never echoed: it may be a URL with a token.
    errors.push({ path: at + e.path, reason: e.message.replace(/^Expected/, "must be") });
  }
  if (errors.length > 0) return { errors };
  const targets = normalizeTargets(list as NotificationTargetInput[], errors, at);
  return errors.length > 0 ? { errors } : { targets };
}

/** Does `target` want events of this kind? */
export function wants(target: NotificationTarget, event: NotificationEvent): boolean {
  return target.events === null || target.events.includes(event);
}
