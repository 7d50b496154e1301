// Notification targets and webhook gates in a spec (every bad field with its pointer, as the API's 400 and
// `modelroll lint` list them), the redaction of their URLs, the controller-wide targets from the environment,
// and the Slack and Teams message formats. Pure.
import { describe, expect, it } from "vitest";
import { validateRolloutSpec } from "../../controller/src/rollouts/validate.ts";
import { fingerprint, isRedacted, redactUrl, redactUrls, restoreRedacted, scrubUrl } from "../../controller/src/secrets.ts";
import { parseTargetsEnv } from "../../controller/src/engine/index.ts";
import { eventOf, type NotificationPayload } from "../../controller/src/notify/events.ts";
import { slackMessage, teamsMessage } from "../../controller/src/notify/formats.ts";
import { retryAfter } from "../../controller/src/notify/dispatcher.ts";
import { Phase, type Decision } from "../../controller/src/engine/index.ts";

const SLACK = "https://hooks.slack.com/services/T0001/B0002/XXXXXXXXXXXXXXXXXXXXXXXX";
const BASE = {
  name: "fraud-model",
  match: { pathPrefix: "/v1/predict" },
  stickyKey: { header: "x-user-id" },
  owner: "team-fraud",
  rollbackCondition: "errors above 1%",
  stages: [10, 100],
  promotion_gates: { error_rate: { maximum: 0.01 } },
};

function errorsOf(spec: Record<string, unknown>) {
  const result = validateRolloutSpec(spec);
  if (result.ok) throw new Error("expected the spec to be refused");
  return result.errors;
}

describe("notifications in a spec", () => {
  it("accepts targets of each format, with events to pick from", () => {
    const result = validateRolloutSpec({
      ...BASE,
      notifications: {
        targets: [
          { name: "team-slack", format: "slack", url: SLACK, events: ["rolled_back", "succeeded"] },
          { format: "teams", url: "https://example.webhook.office.com/webhookb2/abc" },
          { url: "https://ops.internal/hooks/modelroll?token=t0k3n", timeoutMs: 2000 },
        ],
        gateErrorAfterSeconds: 30,
      },
    });
    expect(result.ok, JSON.stringify(result)).toBe(true);
  });

  it("refuses each bad field at its pointer, never echoing a URL", () => {
    const errors = errorsOf({
      ...BASE,
      notifications: {
        targets: [
          { format: "discord", url: SLACK },
          { url: "ftp://files.internal/x" },
          { url: SLACK, events: ["rolled_back", "exploded"] },
          { name: "a", url: "https://a.internal/1" },
          { name: "a", url: "https://a.internal/2", timeoutMs: 10 },
          { url: "https://hooks.slack.com/<redacted:0123abcd>" },
        ],
        gateErrorAfterSeconds: -1,
        colour: "red",
      },
    });
    const at = (path: string) => errors.filter((e) => e.path === path).map((e) => e.reason);
    expect(at("/notifications/targets/0/format")).toEqual(['must be one of "webhook", "slack", "teams"']);
    expect(at("/notifications/targets/1/url")).toEqual(["must be an http:// or https:// URL"]);
    expect(at("/notifications/targets/2/events/1")[0]).toMatch(/^must be one of "started", "stage_advanced", /);
    expect(at("/notifications/targets/4/timeoutMs")).toEqual(["must be at least 100"]);
    expect(at("/notifications/gateErrorAfterSeconds")).toEqual(["must be at least 0"]);
    expect(at("/notifications/colour")[0]).toMatch(/^is not a known field \(known: targets, controllerTargets, gateErrorAfterSeconds\)/);
    // Structure first: the semantic checks (duplicate names, redacted URLs) run on a spec of the right shape.
    const semantic = errorsOf({
      ...BASE,
      notifications: {
        targets: [
          { name: "a", url: "https://a.internal/1" },
          { name: "a", url: "https://a.internal/2" },
          { url: "https://hooks.slack.com/<redacted:0123abcd>" },
        ],
      },
    });
    expect(semantic).toEqual([
      { path: "/notifications/targets/1/name", reason: "duplicate target name 'a' (also target 0)" },
      { path: "/notifications/targets/2/url", reason: expect.stringMatching(/^is a redacted URL as GET shows it: give the real URL/) },
    ]);
    expect(JSON.stringify([...errors, ...semantic])).not.toContain("XXXXXXXX");
  });
});

describe("webhook gates in a spec", () => {
  const gate = (g: Record<string, unknown>) => ({ ...BASE, promotion_gates: { llm_judge: g } });

  it("take a URL, a timeout and an interval; no limits", () => {
    expect(validateRolloutSpec(gate({ webhook: { url: "http://judge.internal/eval", timeoutMs: 5000, intervalSeconds: 10 }, during: ["canary"] })).ok).toBe(
      true,
    );
    expect(errorsOf(gate({ webhook: { url: "http://judge.internal/eval" }, maximum: 1 }))).toEqual([
      { path: "/promotion_gates/llm_judge/maximum", reason: "a webhook gate has no limits: its judge answers pass, fail or inconclusive" },
    ]);
    expect(errorsOf(gate({ webhook: { url: "judge.internal" } }))).toEqual([
      { path: "/promotion_gates/llm_judge/webhook/url", reason: "must be an http:// or https:// URL" },
    ]);
    expect(errorsOf(gate({ webhook: { url: "http://j/e", timeoutMs: 50 } }))).toEqual([
      { path: "/promotion_gates/llm_judge/webhook/timeoutMs", reason: "must be at least 100" },
    ]);
    expect(errorsOf(gate({ webhook: { url: "http://j/e" }, query: "up" }))).toEqual([
      { path: "/promotion_gates/llm_judge", reason: "needs exactly one of query, ratio, mean, external, webhook (has query, webhook)" },
    ]);
  });
});

describe("redaction", () => {
  it("keeps the scheme and host and a fingerprint, nothing of the path, query or credentials", () => {
    const shown = redactUrl(SLACK);
    expect(shown).toBe(`https://hooks.slack.com/<redacted:${fingerprint(SLACK)}>`);
    expect(isRedacted(shown)).toBe(true);
    expect(redactUrl("https://user:pw@ops.internal:8443/h?token=abc")).toMatch(/^https:\/\/ops\.internal:8443\/<redacted:[0-9a-f]{8}>$/);
    expect(redactUrl(shown)).toBe(shown);
    expect(scrubUrl(`request to ${SLACK} failed`, SLACK)).toBe(`request to ${shown} failed`);
    expect(scrubUrl("failed at /services/T0001/B0002/XXXXXXXXXXXXXXXXXXXXXXXX", SLACK)).not.toContain("XXXX");
  });

  it("redacts every url of a release part, and a redacted url sent back becomes the one with that fingerprint again", () => {
    const release = {
      finalize: { webhook: { url: "http://cd.internal/h?k=1" } },
      notifications: { targets: [{ url: SLACK }] },
      promotion_gates: { j: { webhook: { url: "http://j.internal/e" } } },
    };
    const shown = redactUrls(release);
    expect(JSON.stringify(shown)).not.toMatch(/k=1|XXXX|\/e"/);
    expect(restoreRedacted(shown, release)).toEqual(release);
    // A fingerprint the rollout does not have stays redacted (and is then refused by the spec check).
    const other = { notifications: { targets: [{ url: "https://hooks.slack.com/<redacted:00000000>" }] } };
    expect(restoreRedacted(other, release)).toEqual(other);
  });
});

describe("controller-wide targets from MODELROLL_NOTIFY_TARGETS", () => {
  it("takes the short form and the JSON form; errors name the item, not the URL", () => {
    const short = parseTargetsEnv(`slack=${SLACK},https://ops.internal/hook`);
    expect(short).toEqual({
      targets: [
        { name: "slack-0", format: "slack", url: SLACK, events: null, timeoutMs: 5000 },
        { name: "webhook-1", format: "webhook", url: "https://ops.internal/hook", events: null, timeoutMs: 5000 },
      ],
    });
    const json = parseTargetsEnv(JSON.stringify([{ name: "ops", format: "teams", url: "https://t.internal/x", events: ["rolled_back"] }]));
    expect(json).toMatchObject({ targets: [{ name: "ops", format: "teams", events: ["rolled_back"] }] });
    const bad = parseTargetsEnv(`pager=${SLACK}`);
    expect("error" in bad && bad.error).toMatch(/^MODELROLL_NOTIFY_TARGETS: \/0\/format /);
    expect(JSON.stringify(bad)).not.toContain("XXXX");
    expect(parseTargetsEnv("[not json")).toEqual({ error: expect.stringMatching(/^MODELROLL_NOTIFY_TARGETS: not a JSON list/) });
  });
});

const decision = (over: Partial<Decision>): Decision => ({
  at: 0,
  rollout: "r",
  kind: "held",
  from: Phase.Canary,
  to: Phase.Canary,
  stage: { index: 0, name: "10%" },
  actor: "engine",
  reason: "",
  measurements: [],
  trafficMix: [],
  window: null,
  ...over,
});

describe("which decisions are announced", () => {
  it.each([
    [{ kind: "started", from: Phase.Pending, to: Phase.Canary }, "started"],
    [{ kind: "advanced", to: Phase.Canary }, "stage_advanced"],
    [{ kind: "promoted", to: Phase.Baking }, "stage_advanced"],
    [{ kind: "held" }, null],
    [{ kind: "trafficMixWarning" }, null],
    [{ kind: "paused", to: Phase.Paused }, "paused"],
    [{ kind: "resumed", from: Phase.Paused }, "resumed"],
    [{ kind: "deadlinePassed" }, "deadline_passed"],
    [{ kind: "awaitingReview", from: Phase.Baking, to: Phase.AwaitingReview }, "awaiting_review"],
    [{ kind: "rolledBack", to: Phase.RolledBack }, "rolled_back"],
    [{ kind: "failed", to: Phase.Failed }, "rolled_back"],
    [{ kind: "reviewed", from: Phase.AwaitingReview, to: Phase.RolledBack }, "rolled_back"],
    [{ kind: "reviewed", from: Phase.AwaitingReview, to: Phase.Succeeded }, "succeeded"],
    [{ kind: "succeeded", from: Phase.Baking, to: Phase.Succeeded }, "succeeded"],
    [{ kind: "undone", from: Phase.Succeeded, to: Phase.RolledBack }, "rolled_back"],
    [{ kind: "canaryWithdrawn", from: Phase.Succeeded, to: Phase.Succeeded }, "canary_withdrawn"],
    [{ kind: "finalizeRequested", from: Phase.Succeeded, to: Phase.Finalizing }, null],
    [{ kind: "finalizeNotVerified", from: Phase.Finalizing, to: Phase.Succeeded }, "finalize_not_verified"],
    [{ kind: "finalized", from: Phase.Finalizing, to: Phase.Finalized }, "finalized"],
    [{ kind: "specChanged" }, null],
  ] as Array<[Partial<Decision>, string | null]>)("%o -> %s", (d, event) => {
    expect(eventOf(decision(d))).toBe(event);
  });
});

const payload: NotificationPayload = {
  id: "fraud-model:1767225600000:7",
  type: "rollout.rolled_back",
  at: "2026-01-01T00:03:00.000Z",
  summary: "fraud-model rolled back at stage 10% (2 of 4): error_rate 8.1% vs 0.3% (maximum 1%); all traffic on stable",
  rollout: "fraud-model",
  phase: "RolledBack",
  previousPhase: "Canary",
  stage: { index: 1, name: "10%", of: 4 },
  weights: { canaryPercent: 0, shadowPercent: 0 },
  actor: "engine",
  decision: "rolledBack",
  reason: "canary worse overall: error rate 8.1% vs 0.3% <b>",
  owner: "team-fraud",
  rollbackCondition: "errors above 1%",
  models: null,
  variants: {
    stable: { model: null, cluster: "stable", upstreams: ["10.0.0.1:8080"] },
    canary: { model: null, cluster: "canary", upstreams: ["10.0.0.2:8080"] },
    text: "stable 10.0.0.1:8080 · canary 10.0.0.2:8080",
  },
  failingGate: {
    gate: "error_rate",
    slice: "overall",
    status: "Failed",
    candidate: "canary",
    value: 0.081,
    stableValue: 0.003,
    unit: "ratio",
    threshold: { kind: "maximum", value: 0.01 },
    samples: { candidate: 74, stable: 247 },
    reason: "x",
  },
  worstSegment: null,
  gate: null,
  pending: null,
  evidence: [],
  window: null,
  links: {
    rollout: "https://modelroll.internal/v1/rollouts/fraud-model",
    report: "https://modelroll.internal/v1/rollouts/fraud-model/report",
    reportMarkdown: "https://modelroll.internal/v1/rollouts/fraud-model/report?format=markdown",
    history: "h",
    dashboard: "https://modelroll.internal/rollouts/fraud-model",
  },
};

describe("message formats", () => {
  it("Slack: text as the notification, header, reason (escaped), facts, buttons to the report and dashboard, the event id", () => {
    const m = slackMessage(payload) as { text: string; blocks: Array<Record<string, any>> };
    expect(m.text).toMatch(/^🚨 fraud-model rolled back at stage 10%/);
    expect(m.blocks.map((b) => b.type)).toEqual(["header", "section", "section", "actions", "context"]);
    expect(m.blocks[1].text.text).toContain("&lt;b&gt;");
    expect(m.blocks[2].fields.map((f: { text: string }) => f.text.split("\n")[0])).toEqual([
      "*Phase*",
      "*Stage*",
      "*Canary*",
      "*Models*",
      "*Owner*",
      "*Failing gate*",
    ]);
    expect(m.blocks[2].fields[3].text).toBe("*Models*\nstable 10.0.0.1:8080 · canary 10.0.0.2:8080");
    expect(m.blocks[2].fields[5].text).toBe("*Failing gate*\nerror_rate 8.1% vs 0.3% (maximum 1%)");
    expect(m.blocks[3].elements.map((e: { url: string }) => e.url)).toEqual([payload.links.reportMarkdown, payload.links.dashboard]);
    expect(m.blocks[4].elements[0].text).toContain(payload.id);
    // Relative links (no public URL configured) give no buttons: Slack wants absolute ones.
    const relative = slackMessage({ ...payload, links: { ...payload.links, report: "/v1/rollouts/fraud-model/report" } }) as {
      blocks: Array<{ type: string }>;
    };
    expect(relative.blocks.map((b) => b.type)).not.toContain("actions");
  });

  it("Teams: a message with one Adaptive Card", () => {
    const m = teamsMessage(payload) as any;
    expect(m.type).toBe("message");
    expect(m.attachments).toHaveLength(1);
    expect(m.attachments[0].contentType).toBe("application/vnd.microsoft.card.adaptive");
    const card = m.attachments[0].content;
    expect(card).toMatchObject({ type: "AdaptiveCard", version: "1.4" });
    expect(card.body[0]).toMatchObject({ type: "TextBlock", color: "Attention", text: expect.stringMatching(/^🚨 fraud-model rolled back/) });
    expect(card.body[2].facts).toContainEqual({ title: "Failing gate", value: "error_rate 8.1% vs 0.3% (maximum 1%)" });
    expect(card.body[2].facts).toContainEqual({ title: "Models", value: "stable 10.0.0.1:8080 · canary 10.0.0.2:8080" });
    expect(card.actions.map((a: { type: string }) => a.type)).toEqual(["Action.OpenUrl", "Action.OpenUrl"]);
  });
});

describe("Retry-After", () => {
  it("reads seconds and HTTP dates", () => {
    expect(retryAfter("3", 0)).toBe(3000);
    expect(retryAfter(new Date(10_000).toUTCString(), 4000)).toBe(6000);
    expect(retryAfter("soon", 0)).toBeNull();
    expect(retryAfter(null, 0)).toBeNull();
  });
});
