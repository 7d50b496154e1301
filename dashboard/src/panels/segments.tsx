// "Where is the canary worse": every segment value, worst first, with its traffic share per variant and
// each gate's canary vs stable; then the traffic-mix check per dimension.
import { inUnit, num, percent, verdictIcon } from "../format.ts";
import type { MixRow } from "../read.ts";
import type { SegmentRow } from "../read-stats.ts";

export function Segments(props: { rows: SegmentRow[]; mix: MixRow[] }) {
  if (props.rows.length === 0 && props.mix.length === 0) return null;
  const gateNames = [...new Set(props.rows.flatMap((r) => r.gates.map((g) => g.gate)))];
  return (
    <section class="panel">
      <h2>Where is the canary worse</h2>
      {props.rows.length > 0 && (
        <table class="grid" data-testid="segments">
          <thead>
            <tr>
              <th>dimension</th>
              <th>value</th>
              <th class="num">share of stable</th>
              <th class="num">share of candidate</th>
              {gateNames.map((g) => (
                <th key={g}>{g}: candidate vs stable</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {props.rows.map((r) => (
              <tr
                key={`${r.dimension}=${r.value}`}
                class={`verdict-${r.worst}`}
                data-testid="segment-row"
                data-slice={`${r.dimension}=${r.value}`}
                data-worst={r.worst}
              >
                <td>{r.dimension}</td>
                <td>{r.value}</td>
                <td class="num">{percent(r.stableShare, 1)}</td>
                <td class="num">{percent(r.canaryShare, 1)}</td>
                {gateNames.map((name) => {
                  const g = r.gates.find((x) => x.gate === name);
                  return (
                    <td key={name} class={g ? `v-${g.verdict}` : ""} title={g?.reason ?? ""}>
                      {g ? `${verdictIcon(g.verdict)} ${inUnit(g.candidate, g.unit)} vs ${inUnit(g.stable, g.unit)}` : "–"}
                    </td>
                  );
                })}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {props.mix.length > 0 && (
        <>
          <h3>Traffic mix (candidate vs stable, per dimension)</h3>
          <table class="grid" data-testid="traffic-mix">
            <thead>
              <tr>
                <th>dimension</th>
                <th>result</th>
                <th class="num">p-value</th>
                <th class="num">distance</th>
                <th>reason</th>
              </tr>
            </thead>
            <tbody>
              {props.mix.map((m) => (
                <tr key={m.dimension}>
                  <td>{m.dimension}</td>
                  <td class={m.mismatch ? "v-Failed" : "v-Passed"}>{m.mismatch ? "⚠ differs" : "✔ same mix"}</td>
                  <td class="num">{num(m.pValue)}</td>
                  <td class="num">{percent(m.distance, 1)}</td>
                  <td class="reason">{m.reason}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
