// The actions: each asks for confirmation, is sent with the revision the page showed when the dialog opened
// (If-Match), and a 412 says what changed since instead of overwriting it.
import { useRef, useState } from "preact/hooks";
import { ApiError, getJson, storeActor, storedActor, write } from "../api.ts";
import { pct } from "../format.ts";
import { field, num, str, type ActionName, type Picture } from "../read.ts";

const LABELS: Record<ActionName, string> = {
  promote: "Promote",
  pause: "Pause",
  resume: "Resume",
  rollback: "Roll back",
  undo: "Undo",
  fail: "Fail",
  approve: "Approve review",
  reject: "Reject review",
  finalize: "Finalize",
};

const EXPLAIN: Record<ActionName, string> = {
  promote: "Move to the next stage now, whatever the gates say.",
  pause: "Hold the current weights: no promotion and no deadline; a Failed gate still rolls back.",
  resume: "Resume the rollout where it was paused.",
  rollback: "Send all traffic back to stable and stop mirroring, at once.",
  undo: "Go back to the old stable, which is still warm.",
  fail: "Give up on this rollout: all traffic to stable.",
  approve: "Approve: the rollout succeeds and the new model stays.",
  reject: "Reject: back to the old stable.",
  finalize: "Stable now serves the new model: the controller checks that, routes all traffic to stable and archives the rollout.",
};

const DANGER = new Set<ActionName>(["rollback", "undo", "fail", "reject"]);

interface Shown {
  revision: number | null;
  phase: string | null;
  stage: string | null;
  canaryPercent: number | null;
  shadowPercent: number | null;
}

/** What differs between the state the page showed and the current view, in words. */
export function describeChange(shown: Shown, now: unknown): string {
  const parts: string[] = [];
  const phase = str(field(now, "phase"));
  const stage = str(field(now, "stage", "name"));
  const canary = num(field(now, "canaryPercent"));
  const shadow = num(field(now, "shadowPercent"));
  if (phase !== shown.phase) parts.push(`phase ${shown.phase ?? "–"} → ${phase ?? "–"}`);
  if (stage !== shown.stage) parts.push(`stage ${shown.stage ?? "–"} → ${stage ?? "–"}`);
  if (canary !== shown.canaryPercent) parts.push(`canary ${pct(shown.canaryPercent)} → ${pct(canary)}`);
  if (shadow !== shown.shadowPercent) parts.push(`shadow ${pct(shown.shadowPercent)} → ${pct(shadow)}`);
  const revision = num(field(now, "revision"));
  return `revision ${shown.revision ?? "–"} → ${revision ?? "–"}${parts.length > 0 ? `: ${parts.join(", ")}` : ""}`;
}

export function Actions(props: { p: Picture; canWrite: boolean }) {
  const { p } = props;
  const dialog = useRef<HTMLDialogElement>(null);
  const [pending, setPending] = useState<{ action: ActionName; shown: Shown } | null>(null);
  const [reason, setReason] = useState("");
  const [actor, setActor] = useState(storedActor());
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<{ tone: "good" | "bad"; text: string } | null>(null);

  if (!props.canWrite || (p.actions.length === 0 && result === null)) return null;

  const open = (action: ActionName) => {
    setPending({
      action,
      shown: { revision: p.revision, phase: p.phase, stage: p.stage?.name ?? null, canaryPercent: p.canaryPercent, shadowPercent: p.shadowPercent },
    });
    setReason("");
    setResult(null);
    dialog.current?.showModal();
  };

  const confirm = async () => {
    if (!pending) return;
    setBusy(true);
    const base = `/v1/rollouts/${encodeURIComponent(p.name)}`;
    const body =
      pending.action === "approve" || pending.action === "reject"
        ? { approved: pending.action === "approve", ...(reason ? { reason } : {}) }
        : reason
          ? { reason }
          : {};
    const path = pending.action === "approve" || pending.action === "reject" ? `${base}/review` : `${base}/${pending.action}`;
    storeActor(actor);
    try {
      const view = await write(path, { body, ifMatch: pending.shown.revision, actor: actor || undefined });
      setResult({ tone: "good", text: `${LABELS[pending.action]} done: ${describeChange(pending.shown, view)}` });
    } catch (error) {
      if (error instanceof ApiError && error.status === 412) {
        let now: unknown = null;
        try {
          now = await getJson(base);
        } catch {
          now = null;
        }
        setResult({
          tone: "bad",
          text: `Not done: the rollout changed since this page showed it (${describeChange(pending.shown, now)}). Nothing was overwritten; the page shows the current state: check it and act again if you still mean to.`,
        });
      } else if (error instanceof ApiError) {
        setResult({ tone: "bad", text: `Refused (${error.status}): ${error.message}` });
      } else {
        setResult({ tone: "bad", text: `Not sent: ${(error as Error).message}` });
      }
    } finally {
      setBusy(false);
      setPending(null);
      dialog.current?.close();
    }
  };

  return (
    <section class="panel actions" data-testid="actions">
      <div class="buttons">
        {p.actions.map((a) => (
          <button type="button" key={a} class={DANGER.has(a) ? "danger" : ""} onClick={() => open(a)} data-testid={`action-${a}`}>
            {LABELS[a]}
          </button>
        ))}
      </div>
      {result && (
        <p class={`result tone-${result.tone}`} role="status" data-testid="action-result">
          {result.text}
        </p>
      )}
      <dialog ref={dialog} class="confirm" data-testid="confirm-dialog" onClose={() => setPending(null)}>
        {pending && (
          <form
            method="dialog"
            onSubmit={(e) => {
              e.preventDefault();
              void confirm();
            }}
          >
            <h3>
              {LABELS[pending.action]} {p.name}?
            </h3>
            <p>{EXPLAIN[pending.action]}</p>
            <p class="muted small">
              As shown: revision {pending.shown.revision ?? "–"}, {pending.shown.phase ?? "manual"}
              {pending.shown.stage ? `, stage ${pending.shown.stage}` : ""}, canary {pct(pending.shown.canaryPercent)}. If the rollout changes before you
              confirm, the controller refuses this (412) rather than act on a state you did not see.
            </p>
            <label>
              Reason (for the record){" "}
              <input value={reason} maxLength={2000} onInput={(e) => setReason((e.target as HTMLInputElement).value)} data-testid="confirm-reason" />
            </label>
            <label>
              Acting as <input value={actor} maxLength={200} onInput={(e) => setActor((e.target as HTMLInputElement).value)} />
            </label>
            <div class="buttons">
              <button type="button" onClick={() => dialog.current?.close()}>
                Cancel
              </button>
              <button type="submit" class={DANGER.has(pending.action) ? "danger" : "primary"} disabled={busy} data-testid="confirm-ok">
                {LABELS[pending.action]}
              </button>
            </div>
          </form>
        )}
      </dialog>
    </section>
  );
}
