// The decision timeline: every decision with its actor and reason, the evidence behind it on demand, and
// the postmortem report (Markdown) one click away.
import { useState } from "preact/hooks";
import { getText } from "../api.ts";
import { inUnit, time, verdictIcon } from "../format.ts";
import type { TimelineEntry } from "../read.ts";

export function Timeline(props: { name: string; entries: TimelineEntry[]; managed: boolean }) {
  const [report, setReport] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [showHeld, setShowHeld] = useState(false);
  if (!props.managed) return null;
  const entries = [...props.entries].reverse().filter((e) => showHeld || e.kind !== "held");
  const openReport = async () => {
    try {
      setError(null);
      setReport(await getText(`/v1/rollouts/${encodeURIComponent(props.name)}/report?format=markdown`, "text/markdown"));
    } catch (e) {
      setError((e as Error).message);
    }
  };
  const download = () => {
    if (report === null) return;
    const url = URL.createObjectURL(new Blob([report], { type: "text/markdown" }));
    const a = document.createElement("a");
    a.href = url;
    a.download = `${props.name}-report.md`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };
  return (
    <section class="panel">
      <div class="toolbar">
        <h2>Decisions</h2>
        <span class="spacer" />
        <label class="check">
          <input type="checkbox" checked={showHeld} onChange={(e) => setShowHeld((e.target as HTMLInputElement).checked)} /> show holds
        </label>
        <button type="button" onClick={openReport} data-testid="open-report">
          Postmortem report
        </button>
      </div>
      {error && <p class="error">{error}</p>}
      {report !== null && (
        <div class="report" data-testid="report">
          <div class="toolbar">
            <button type="button" onClick={download}>
              Download .md
            </button>
            <button type="button" class="link" onClick={() => setReport(null)}>
              close
            </button>
          </div>
          <pre>{report}</pre>
        </div>
      )}
      <ol class="timeline" data-testid="timeline">
        {entries.map((e, i) => (
          <li key={`${e.at}-${i}`} class={`decision kind-${e.kind}`} data-kind={e.kind}>
            <div>
              <span class="when">{time(e.at)}</span> <strong>{e.kind}</strong> {e.from && e.to && e.from !== e.to ? `${e.from} → ${e.to}` : ""}{" "}
              {e.stage ? `· stage ${e.stage}` : ""} · by {e.actor ?? "?"}
            </div>
            <div class="reason">{e.reason}</div>
            {e.evidence.length > 0 && (
              <details>
                <summary>evidence: {e.evidence.length} measurements</summary>
                <ul class="evidence">
                  {e.evidence.map((g, j) => (
                    <li key={j} class={`v-${g.verdict}`}>
                      {verdictIcon(g.verdict)} {g.gate} {g.slice}: {inUnit(g.candidate, g.unit)} vs {inUnit(g.stable, g.unit)} ({g.limit}; {g.interval}){" "}
                      {g.reason}
                    </li>
                  ))}
                </ul>
              </details>
            )}
          </li>
        ))}
      </ol>
    </section>
  );
}
