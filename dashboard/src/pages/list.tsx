// The list page: every rollout, live from GET /v1/events (batched: one update for many changes), with a
// "needs attention" filter. Rows re-render only when their rollout changed.
import { memo } from "preact/compat";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { navigate } from "../app.tsx";
import { age, pct, phaseIcon, phaseTone } from "../format.ts";
import { LiveBadge } from "../live.tsx";
import { arr, field, num, str } from "../read.ts";
import { modelsOf } from "../read-models.ts";
import { follow, type StreamState } from "../stream.ts";
import { CreateRollout } from "../panels/create.tsx";

/** A list item as the stream sends it (events/summary.ts); read tolerantly. */
type Item = Record<string, unknown>;

export function applyBatch(items: Map<string, Item>, data: unknown): void {
  if (field(data, "full") === true) items.clear();
  for (const name of arr(field(data, "removed"))) if (typeof name === "string") items.delete(name);
  for (const item of arr(field(data, "items"))) {
    const name = str(field(item, "name"));
    if (name) items.set(name, item as Item);
  }
}

const Row = memo(function Row(props: { item: Item; minute: number }) {
  const { item } = props;
  const name = str(item.name) ?? "?";
  const phase = str(item.phase);
  const stage = str(field(item, "stage", "name"));
  const index = num(field(item, "stage", "index"));
  const stageCount = num(item.stageCount);
  const attention = arr(item.attention).filter((a): a is string => typeof a === "string");
  const href = `/rollouts/${encodeURIComponent(name)}`;
  return (
    <tr data-testid="rollout-row" data-name={name} class={attention.length > 0 ? "needs" : ""}>
      <td>
        <a
          href={href}
          onClick={(e) => {
            e.preventDefault();
            navigate(href);
          }}
        >
          {name}
        </a>
      </td>
      <td class={`phase tone-${phaseTone(phase)}`}>
        {phaseIcon(phase)} {phase ?? "manual"}
      </td>
      <td>{stage ? `${stage}${index !== null && stageCount ? ` (${index + 1}/${stageCount})` : ""}` : "–"}</td>
      <td class="num">
        {pct(num(item.canaryPercent))}
        {(num(item.shadowPercent) ?? 0) > 0 ? ` · shadow ${pct(num(item.shadowPercent))}` : ""}
      </td>
      <td class="num">{pct(num(item.observedCanaryPercent))}</td>
      <td class="models" data-testid="row-models" title={modelsOf(item).models ?? ""}>
        {modelsOf(item).modelsShort ?? "–"}
      </td>
      <td>{str(item.owner) ?? "–"}</td>
      <td class="num">{age(str(item.createdAt), props.minute)}</td>
      <td class="latest" title={str(field(item, "lastDecision", "reason")) ?? ""}>
        {str(field(item, "lastDecision", "kind")) ?? ""}
        {str(field(item, "lastDecision", "reason")) ? `: ${str(field(item, "lastDecision", "reason"))}` : ""}
      </td>
      <td>
        {attention.map((a) => (
          <span class="badge badge-warn" key={a}>
            {a}
          </span>
        ))}
      </td>
    </tr>
  );
});

export function ListPage(props: { canWrite: boolean }) {
  const items = useRef(new Map<string, Item>());
  const [version, setVersion] = useState(0);
  const [stream, setStream] = useState<{ state: StreamState; detail?: string }>({ state: "connecting" });
  const [attentionOnly, setAttentionOnly] = useState(false);
  const [search, setSearch] = useState("");
  const [loaded, setLoaded] = useState(false);
  const [minute, setMinute] = useState(() => Date.now());

  useEffect(() => {
    const stop = follow("/v1/events", {
      onEvent: (event) => {
        if (event.event !== "rollouts") return;
        applyBatch(items.current, JSON.parse(event.data));
        setLoaded(true);
        setVersion((v) => v + 1);
      },
      onState: (state, detail) => setStream({ state, detail }),
    });
    const ticker = window.setInterval(() => setMinute(Date.now()), 30_000);
    return () => {
      stop();
      window.clearInterval(ticker);
    };
  }, []);

  const rows = useMemo(() => {
    const needle = search.trim().toLowerCase();
    const all = [...items.current.values()].sort((a, b) => String(a.name).localeCompare(String(b.name)));
    return all.filter(
      (item) =>
        (!attentionOnly || arr(item.attention).length > 0) &&
        (needle === "" ||
          String(item.name).includes(needle) ||
          String(item.owner ?? "")
            .toLowerCase()
            .includes(needle)),
    );
  }, [version, attentionOnly, search]);
  const needing = useMemo(() => [...items.current.values()].filter((i) => arr(i.attention).length > 0).length, [version]);

  return (
    <section>
      <div class="toolbar">
        <h1>Rollouts</h1>
        <span class="muted" data-testid="counts">
          {items.current.size} rollouts · {needing} need attention
        </span>
        <span class="spacer" />
        <label class="check">
          <input
            type="checkbox"
            checked={attentionOnly}
            onChange={(e) => setAttentionOnly((e.target as HTMLInputElement).checked)}
            data-testid="attention-filter"
          />{" "}
          needs attention
        </label>
        <input type="search" placeholder="filter by name or owner" value={search} onInput={(e) => setSearch((e.target as HTMLInputElement).value)} />
        <LiveBadge state={stream.state} detail={stream.detail} />
        {props.canWrite && <CreateRollout />}
      </div>
      {!loaded ? (
        <p class="muted">Loading…</p>
      ) : items.current.size === 0 ? (
        <div class="card empty">
          <h2>No rollouts yet</h2>
          <p>
            Create one with "New rollout" above, <code>npx modelroll create -f rollout.yaml</code> or <code>curl -XPOST /v1/rollouts</code> (see the README's
            quick start); it appears here at once.
          </p>
        </div>
      ) : (
        <table class="list" data-testid="rollout-list">
          <thead>
            <tr>
              <th>rollout</th>
              <th>phase</th>
              <th>stage</th>
              <th class="num">set</th>
              <th class="num">observed</th>
              <th title="stable → canary: the declared versions, else the upstream each reaches">models</th>
              <th>owner</th>
              <th class="num">age</th>
              <th>latest decision</th>
              <th>needs attention</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((item) => (
              <Row key={String(item.name)} item={item} minute={minute} />
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
