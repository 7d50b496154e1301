// The rollout page. The stream GET /v1/events?rollout=NAME (summary, plan, latest evaluation, view) drives
// it; each event also refreshes the figures that come from other routes (stats, report, history, series),
// one refresh at a time.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { getJson } from "../api.ts";
import { LiveBadge } from "../live.tsx";
import { arr, buildPicture, field, str } from "../read.ts";
import { readSeries } from "../read-series.ts";
import { readStats, segmentRows } from "../read-stats.ts";
import { follow, type StreamState } from "../stream.ts";
import { Actions } from "../panels/actions.tsx";
import { Charts, LlmCharts, ShadowCharts } from "../panels/charts.tsx";
import { Llm, Output, Shadow, Streams, Traffic } from "../panels/figures.tsx";
import { Header } from "../panels/header.tsx";
import { Scorecard } from "../panels/scorecard.tsx";
import { Segments } from "../panels/segments.tsx";
import { Timeline } from "../panels/timeline.tsx";

interface Loaded {
  stats: unknown;
  statsError: string | null;
  report: unknown;
  history: unknown;
  series: unknown;
}

export function RolloutPage(props: { name: string; canWrite: boolean }) {
  const base = `/v1/rollouts/${encodeURIComponent(props.name)}`;
  const [summary, setSummary] = useState<unknown>(null);
  const [view, setView] = useState<unknown>(null);
  const [loaded, setLoaded] = useState<Loaded>({ stats: null, statsError: null, report: null, history: null, series: null });
  const [stream, setStream] = useState<{ state: StreamState; detail?: string }>({ state: "connecting" });
  const [deleted, setDeleted] = useState(false);
  const managedRef = useRef(false);
  const refreshing = useRef<Promise<void> | null>(null);
  const again = useRef(false);

  const refresh = () => {
    if (refreshing.current) {
      again.current = true;
      return;
    }
    const run = async () => {
      const managed = managedRef.current;
      const settle = <T,>(p: Promise<T>) =>
        p.then(
          (value) => ({ value, error: null as string | null }),
          (e: Error) => ({ value: null, error: e.message }),
        );
      const [stats, report, history, series] = await Promise.all([
        settle(getJson(`${base}/stats`)),
        managed ? settle(getJson(`${base}/report`)) : Promise.resolve({ value: null, error: null }),
        managed ? settle(getJson(`${base}/history`)) : Promise.resolve({ value: null, error: null }),
        settle(getJson(`${base}/series`)),
      ]);
      setLoaded((previous) => ({
        stats: stats.value ?? previous.stats,
        statsError: stats.error,
        report: report.value ?? previous.report,
        history: history.value ?? previous.history,
        series: series.value ?? previous.series,
      }));
    };
    refreshing.current = run().finally(() => {
      refreshing.current = null;
      if (again.current) {
        again.current = false;
        refresh();
      }
    });
  };

  useEffect(() => {
    const stop = follow(`/v1/events?rollout=${encodeURIComponent(props.name)}`, {
      onEvent: (event) => {
        if (event.event !== "rollouts") return;
        const data = JSON.parse(event.data) as unknown;
        if (arr(field(data, "removed")).includes(props.name)) setDeleted(true);
        const item = arr(field(data, "items")).find((i) => str(field(i, "name")) === props.name);
        if (item) {
          setDeleted(false);
          setSummary(item);
          managedRef.current = field(item, "managed") === true;
          const v = field(data, "views", props.name);
          if (v !== undefined) setView(v);
          refresh();
        }
      },
      onState: (state, detail) => setStream({ state, detail }),
    });
    return stop;
  }, [props.name]);

  const picture = useMemo(
    () => buildPicture({ summary, view, report: loaded.report, history: loaded.history }, Date.now()),
    [summary, view, loaded.report, loaded.history],
  );
  const stats = useMemo(() => (loaded.stats ? readStats(loaded.stats) : null), [loaded.stats]);
  const series = useMemo(() => readSeries(loaded.series), [loaded.series]);
  const segments = useMemo(() => segmentRows(loaded.stats, picture.gates), [loaded.stats, picture.gates]);
  const gateUnits = useMemo(() => Object.fromEntries(picture.gates.map((g) => [g.gate, g.unit])), [picture.gates]);

  if (stream.state === "refused" && summary === null) {
    return (
      <p class="error" data-testid="not-found">
        {stream.detail}
      </p>
    );
  }
  if (summary === null) return <p class="muted">Loading {props.name}…</p>;
  return (
    <div class="rollout" data-testid="rollout-page">
      <div class="toolbar">
        <span class="spacer" />
        <LiveBadge state={stream.state} detail={stream.detail} />
      </div>
      {deleted && (
        <p class="error" data-testid="deleted">
          This rollout was deleted.
        </p>
      )}
      <Header p={picture} />
      <Actions p={picture} canWrite={props.canWrite && !deleted} />
      <Traffic stats={stats} error={loaded.statsError} />
      <Scorecard p={picture} />
      <Charts series={series} timeline={picture.timeline} gateKinds={picture.gateKinds} gateUnits={gateUnits} />
      <Segments rows={segments} mix={picture.trafficMix} />
      {stats && <Output stats={stats} series={series} />}
      {stats && (
        <Llm stats={stats}>
          <LlmCharts series={series} timeline={picture.timeline} />
        </Llm>
      )}
      {stats && <Streams stats={stats} />}
      {stats && (
        <Shadow stats={stats}>
          <ShadowCharts series={series} timeline={picture.timeline} />
        </Shadow>
      )}
      <Timeline name={picture.name} entries={picture.timeline} managed={picture.managed} />
    </div>
  );
}
