// "New rollout": a spec in YAML or JSON, sent as it is to POST /v1/rollouts; a refused spec shows every bad
// field with its JSON pointer, as the API reports it.
import { useRef, useState } from "preact/hooks";
import { ApiError, write } from "../api.ts";
import { navigate } from "../app.tsx";
import { arr, field, str } from "../read.ts";

const EXAMPLE = `name: fraud-model
match: { pathPrefix: /v1/predict }
stickyKey: { header: x-user-id }
owner: team-fraud
rollbackCondition: canary error rate above 1% or p95 10% slower than stable
stages: [5, 25, 50, 100]
stageDefaults: { minDurationSeconds: 60, minRequests: 500 }
promotion_gates:
  error_rate: { maximum: 0.01 }
  latency_p95_ms: { maximum_regression_percent: 10 }
`;

export function CreateRollout() {
  const dialog = useRef<HTMLDialogElement>(null);
  const [text, setText] = useState(EXAMPLE);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<{ message: string; details: Array<{ path: string; reason: string }> } | null>(null);

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const created = await write("/v1/rollouts", { raw: text, contentType: "application/yaml" });
      const name = str(field(created, "name"));
      dialog.current?.close();
      if (name) navigate(`/rollouts/${encodeURIComponent(name)}`);
    } catch (e) {
      const details =
        e instanceof ApiError ? arr(field(e.body, "details")).map((d) => ({ path: str(field(d, "path")) ?? "", reason: str(field(d, "reason")) ?? "" })) : [];
      setError({ message: (e as Error).message, details });
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      <button type="button" class="primary" onClick={() => dialog.current?.showModal()} data-testid="new-rollout">
        New rollout
      </button>
      <dialog ref={dialog} class="confirm create" data-testid="create-dialog">
        <form method="dialog" onSubmit={submit}>
          <h3>New rollout</h3>
          <p class="muted small">
            The spec in YAML or JSON, as for POST /v1/rollouts (every field: docs/reference/spec.md; every gate: docs/reference/gates.md).
          </p>
          <textarea rows={16} spellcheck={false} value={text} onInput={(e) => setText((e.target as HTMLTextAreaElement).value)} data-testid="create-spec" />
          {error && (
            <div class="error" role="alert" data-testid="create-error">
              <p>{error.message}</p>
              {error.details.length > 0 && (
                <ul>
                  {error.details.map((d, i) => (
                    <li key={i}>
                      <code>{d.path || "(root)"}</code> {d.reason}
                    </li>
                  ))}
                </ul>
              )}
            </div>
          )}
          <div class="buttons">
            <button type="button" onClick={() => dialog.current?.close()}>
              Cancel
            </button>
            <button type="submit" class="primary" disabled={busy} data-testid="create-ok">
              Create
            </button>
          </div>
        </form>
      </dialog>
    </>
  );
}
