/**
 * A rollout's notification settings as GET shows them (in its spec view): every target with its URL redacted.
 */
import { Type, type Static } from "@sinclair/typebox";
import { redactUrl } from "../secrets.ts";
import type { NotificationSpec } from "../engine/index.ts";

export const NotificationView = Type.Object(
  {
    targets: Type.Array(
      Type.Object({
        name: Type.String(),
        format: Type.String({ description: "webhook, slack or teams" }),
        url: Type.String({ description: "Redacted: scheme, host and a fingerprint of the URL. A PUT sending it back keeps the URL." }),
        events: Type.Optional(Type.Array(Type.String(), { description: "Absent: every event." })),
        timeoutMs: Type.Integer(),
      }),
    ),
    controllerTargets: Type.Boolean(),
    gateErrorAfterSeconds: Type.Integer(),
  },
  { description: "Who is told about this rollout's events (README, Notifications)." },
);
export type NotificationView = Static<typeof NotificationView>;

export function notificationView(spec: NotificationSpec): NotificationView {
  return {
    // In the input form, so the view can be sent back in a PUT.
    targets: spec.targets.map((t) => ({
      name: t.name,
      format: t.format,
      url: redactUrl(t.url),
      ...(t.events ? { events: t.events } : {}),
      timeoutMs: t.timeoutMs,
    })),
    controllerTargets: spec.controllerTargets,
    gateErrorAfterSeconds: spec.gateErrorAfterSeconds,
  };
}
