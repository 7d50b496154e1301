// The gate scorecard: one row per gate and slice, worst first, with the numbers behind each verdict.
import { count, inUnit, time, verdictIcon } from "../format.ts";
import type { Picture } from "../read.ts";

export function Scorecard(props: { p: Picture }) {
  const { gates, gatesSource, gatesAt } = props.p;
  return (
    <section class="panel">
      <h2>Gates</h2>
      <p class="muted small">
        {gatesSource === null
          ? "No evaluation yet."
          : `${gatesSource === "live evaluation" ? "The engine's latest evaluation" : "From the last decision with measurements"}${gatesAt ? ` at ${time(gatesAt)}` : ""}; intervals are confidence sequences (valid at every look).`}
      </p>
      {gates.length > 0 && (
        <table class="grid" data-testid="scorecard">
          <thead>
            <tr>
              <th>verdict</th>
              <th>gate</th>
              <th>slice</th>
              <th class="num">stable</th>
              <th class="num">candidate</th>
              <th class="num">difference</th>
              <th>limit</th>
              <th>interval</th>
              <th class="num">n stable / candidate</th>
              <th>reason</th>
            </tr>
          </thead>
          <tbody>
            {gates.map((g) => (
              <tr
                key={`${g.gate}|${g.slice}`}
                class={`verdict-${g.verdict}`}
                data-testid="gate-row"
                data-gate={g.gate}
                data-slice={g.slice}
                data-verdict={g.verdict}
              >
                <td class={`verdict nowrap v-${g.verdict}`}>
                  {verdictIcon(g.verdict)} {g.verdict}
                </td>
                <td>{g.gate}</td>
                <td>{g.slice}</td>
                <td class="num">{inUnit(g.stable, g.unit)}</td>
                <td class="num">
                  {inUnit(g.candidate, g.unit)}
                  {g.candidateName === "shadow" ? " (shadow)" : ""}
                </td>
                <td class="num">{g.comparison || "–"}</td>
                <td class="nowrap">{g.limit}</td>
                <td class="nowrap">{g.interval}</td>
                <td class="num nowrap">
                  {count(g.samples.stable)} / {count(g.samples.candidate)}
                  {g.needed ? ` (needs ${g.needed.stable !== null ? `${count(g.needed.stable)} / ` : ""}${count(g.needed.candidate)})` : ""}
                </td>
                <td class="reason" data-testid="gate-reason">
                  {g.reason}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
