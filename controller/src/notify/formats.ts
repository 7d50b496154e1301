/**
 * A notification as each kind of target takes it: the documented JSON event as is (webhook), a Slack
 * incoming-webhook message (text, with Block Kit blocks), or a Microsoft Teams message carrying an Adaptive
 * Card (what both Teams incoming webhooks and Workflows "when a webhook request is received" accept). Pure.
 */
import { describeItem } from "./evidence.ts";
import type { NotificationPayload } from "./events.ts";
import type { TargetFormat } from "../engine/index.ts";

const ICONS: Record<string, string> = {
  "rollout.started": "🚀",
  "rollout.stage_advanced": "⏩",
  "rollout.paused": "⏸️",
  "rollout.resumed": "▶️",
  "rollout.deadline_passed": "⏰",
  "rollout.awaiting_review": "👀",
  "rollout.rolled_back": "🚨",
  "rollout.succeeded": "✅",
  "rollout.canary_withdrawn": "⚠️",
  "rollout.finalize_not_verified": "⚠️",
  "rollout.finalized": "🏁",
  "rollout.gate_error": "❗",
  "rollout.gate_recovered": "🔧",
};

export function render(format: TargetFormat, payload: NotificationPayload): unknown {
  switch (format) {
    case "slack":
      return slackMessage(payload);
    case "teams":
      return teamsMessage(payload);
    default:
      return payload;
  }
}

/** Label -> value lines shown beside the reason; only what the event has. */
function facts(p: NotificationPayload): Array<[string, string]> {
  const out: Array<[string, string]> = [["Phase", p.previousPhase === p.phase ? p.phase : `${p.previousPhase} → ${p.phase}`]];
  if (p.stage) out.push(["Stage", `${p.stage.name} (${p.stage.index + 1} of ${p.stage.of})`]);
  out.push(["Canary", `${p.weights.canaryPercent}%${p.weights.shadowPercent > 0 ? ` (shadow ${p.weights.shadowPercent}%)` : ""}`]);
  if (p.variants) out.push(["Models", p.variants.text]);
  if (p.owner) out.push(["Owner", p.owner]);
  if (p.failingGate) out.push(["Failing gate", describeItem(p.failingGate)]);
  if (p.worstSegment) out.push(["Worst segment", `${p.worstSegment.slice}: ${describeItem(p.worstSegment)}`]);
  if (p.gate) out.push(["Gate", `${p.gate.name} (Error since ${p.gate.errorSince})`]);
  if (p.actor !== "engine") out.push(["By", p.actor]);
  return out;
}

const absolute = (url: string) => /^https?:\/\//.test(url);

/** Slack: `text` is the notification and fallback; blocks carry the details (each text within Slack's limits). */
export function slackMessage(p: NotificationPayload): Record<string, unknown> {
  const icon = ICONS[p.type] ?? "ℹ️";
  const title = `${icon} ${p.summary}`;
  const blocks: unknown[] = [
    { type: "header", text: { type: "plain_text", text: cut(title, 150), emoji: true } },
    { type: "section", text: { type: "mrkdwn", text: cut(escapeSlack(p.reason), 3000) } },
    {
      type: "section",
      fields: facts(p)
        .slice(0, 10)
        .map(([k, v]) => ({ type: "mrkdwn", text: cut(`*${k}*\n${escapeSlack(v)}`, 2000) })),
    },
  ];
  if (p.pending) blocks.push({ type: "section", text: { type: "mrkdwn", text: cut(`*Next:* ${escapeSlack(p.pending)}`, 3000) } });
  if (absolute(p.links.report)) {
    blocks.push({
      type: "actions",
      elements: [
        { type: "button", text: { type: "plain_text", text: "Report" }, url: p.links.reportMarkdown },
        { type: "button", text: { type: "plain_text", text: "Dashboard" }, url: p.links.dashboard },
      ],
    });
  }
  blocks.push({ type: "context", elements: [{ type: "mrkdwn", text: cut(`${p.type} · ${p.at} · id ${p.id}`, 3000) }] });
  return { text: cut(`${title}: ${p.reason}`, 3000), blocks };
}

/** Teams: one Adaptive Card (version 1.4) in a message. */
export function teamsMessage(p: NotificationPayload): Record<string, unknown> {
  const icon = ICONS[p.type] ?? "ℹ️";
  const bad = p.type === "rollout.rolled_back" || p.type === "rollout.gate_error" || p.type === "rollout.canary_withdrawn";
  const body: unknown[] = [
    { type: "TextBlock", size: "Medium", weight: "Bolder", wrap: true, text: `${icon} ${p.summary}`, color: bad ? "Attention" : "Default" },
    { type: "TextBlock", wrap: true, text: p.reason },
    { type: "FactSet", facts: facts(p).map(([title, value]) => ({ title, value })) },
  ];
  if (p.pending) body.push({ type: "TextBlock", wrap: true, text: `**Next:** ${p.pending}` });
  body.push({ type: "TextBlock", wrap: true, isSubtle: true, size: "Small", text: `${p.type} · ${p.at} · id ${p.id}` });
  const card: Record<string, unknown> = { $schema: "http://adaptivecards.io/schemas/adaptive-card.json", type: "AdaptiveCard", version: "1.4", body };
  if (absolute(p.links.report)) {
    card.actions = [
      { type: "Action.OpenUrl", title: "Report", url: p.links.reportMarkdown },
      { type: "Action.OpenUrl", title: "Dashboard", url: p.links.dashboard },
    ];
  }
  return { type: "message", summary: p.summary, attachments: [{ contentType: "application/vnd.microsoft.card.adaptive", contentUrl: null, content: card }] };
}

function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

// Slack's mrkdwn treats &, < and > as control characters.
function escapeSlack(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
