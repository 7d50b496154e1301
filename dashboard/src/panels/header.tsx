// The rollout's header: who, what, where it is (stage bar), how far the stage is, set vs observed weight,
// and what holds it.
import { useEffect, useState } from "preact/hooks";
import { duration, pct, phaseIcon, phaseTone } from "../format.ts";
import { timeInStage, type Picture } from "../read.ts";
import { observedWindowText } from "../read-models.ts";

export function Header(props: { p: Picture }) {
  const p = props.p;
  // Its own clock: only the header changes every second.
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const ticker = window.setInterval(() => setNow(Date.now()), 1000);
    return () => window.clearInterval(ticker);
  }, []);
  const ended = p.phase === "Succeeded" || p.phase === "Finalizing" || p.phase === "Finalized" || p.phase === "RolledBack" || p.phase === "Failed";
  return (
    <section class="panel header">
      <div class="title-row">
        <h1 data-testid="rollout-name">{p.name}</h1>
        <span class={`phase-pill tone-${phaseTone(p.phase)}`} data-testid="phase" data-phase={p.phase ?? "manual"}>
          {phaseIcon(p.phase)} {p.phase ?? "manual rollout"}
        </span>
        <span class="muted" data-testid="revision" data-revision={p.revision ?? ""}>
          revision {p.revision ?? "–"}
        </span>
      </div>
      <dl class="facts">
        <dt>models</dt>
        <dd data-testid="models">{p.models ?? "–"}</dd>
        <dt>owner</dt>
        <dd>{p.owner ?? "–"}</dd>
        <dt>rollback condition</dt>
        <dd>{p.rollbackCondition ?? "–"}</dd>
        <dt>traffic</dt>
        <dd>
          {p.pathPrefix ?? "–"}
          {p.stickyHeader ? `, sticky on ${p.stickyHeader}` : ""}
        </dd>
        <dt>weight</dt>
        <dd data-testid="weights">
          canary <strong>{pct(p.canaryPercent)}</strong> set, <strong data-testid="observed">{pct(p.observedCanaryPercent)}</strong> observed
          {p.observedCanaryPercent !== null && p.observedWindow && (
            <span class="muted" data-testid="observed-window">
              {" "}
              {observedWindowText(p.observedWindow)}
            </span>
          )}{" "}
          · shadow {pct(p.shadowPercent)}
        </dd>
      </dl>
      {p.managed && p.stages.length > 0 && (
        <ol class="stages" data-testid="stage-bar">
          {p.stages.map((s, i) => (
            <li key={`${s.name}-${i}`} class={`stage stage-${s.state}`} data-state={s.state}>
              {s.name}
            </li>
          ))}
          {!p.stagesComplete && <li class="stage stage-unknown">…</li>}
        </ol>
      )}
      {p.managed && !ended && p.stage && (
        <div class="progress" data-testid="stage-progress">
          <span>
            time in stage <strong data-testid="time-in-stage">{duration(timeInStage(p, now))}</strong>
            {p.minDurationSeconds !== null ? ` of ${duration(p.minDurationSeconds)} minimum` : ""}
          </span>
          <span>
            requests <strong>{p.stageRequests ?? "–"}</strong>
            {p.minRequests !== null && p.minRequests > 0 ? ` of ${p.minRequests} minimum` : ""}
          </span>
          {p.etaSeconds !== null && p.phase !== "Paused" && (
            <span>
              decision expected in <strong>{duration(p.etaSeconds)}</strong>
            </span>
          )}
        </div>
      )}
      {p.holding.length > 0 && (
        <div class="holds" data-testid="holds">
          <strong>Holding the stage:</strong>
          <ul>
            {p.holding.map((h, i) => (
              <li key={i}>{h}</li>
            ))}
          </ul>
        </div>
      )}
      {ended && p.why && (
        <p class={`why tone-${phaseTone(p.phase)}`} data-testid="why">
          {p.why}
        </p>
      )}
      {p.pending && <p class="muted">next step: {p.pending}</p>}
      {p.archived && <p class="muted">archived {p.archived}</p>}
    </section>
  );
}
