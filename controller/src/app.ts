import swagger from "@fastify/swagger";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import Fastify, { type FastifyInstance, type FastifyServerOptions } from "fastify";
import { allEventRoutes } from "./events/all.ts";
import { eventRoutes } from "./events/routes.ts";
import { DEFAULT_MAX_EVENT_STREAMS, StreamSlots } from "./events/slots.ts";
import { sessionRoutes } from "./dashboard/session.ts";
import { dashboardStatic } from "./dashboard/static.ts";
import { installBrowserGuard } from "./http/browser-guard.ts";
import { SeriesRecorder } from "./series/recorder.ts";
import { seriesRoutes } from "./series/routes.ts";
import { SeriesStore } from "./series/store.ts";
import { startDistribution, type ConfigDistributor } from "./filter-config/distributor.ts";
import { longPollServed, wasmPluginDistributor, type ConfigDeliveryMode, type ConfigDeliveryOptions } from "./filter-config/delivery.ts";
import { LongPollDistributor } from "./filter-config/long-poll.ts";
import type { WasmPluginDistributor } from "./filter-config/wasmplugin-distributor.ts";
import { LeaderOnlyDistributor } from "./filter-config/leader-only.ts";
import { SOLE_LEADER, type Leadership } from "./kube/leadership.ts";
import { LeaderElector } from "./kube/lease.ts";
import { kubeLeaseApi } from "./kube/lease-api.ts";
import type { LeaseTiming } from "./kube/lease-timing.ts";
import { fencedClient } from "./kube/fencing.ts";
import type { KubeClient } from "./kube/client.ts";
import { DECISIONS_PLURAL, ROLLOUT_PLURAL } from "./kube-state/crd.ts";
import { replicaStatus } from "./system/replica.ts";
import { filterConfigRoutes } from "./filter-config/routes.ts";
import { checkTokens, installAuth } from "./http/auth.ts";
import { installErrorHandling } from "./http/error-handler.ts";
import { registerBodyParsers } from "./http/body-parsers.ts";
import { installSerializerCache } from "./http/serializer-cache.ts";
import type { MetricProvider } from "./metrics/provider.ts";
import { metricSources, type MetricSourceKind } from "./metrics/sources.ts";
import { EnvoyUpstreams } from "./metrics/envoy-upstreams.ts";
import type { Policy, PropagationPolicy, SampleRatioPolicy } from "./engine/index.ts";
import type { ConfigVersionSource } from "./metrics/config-versions.ts";
import { RolloutDriver } from "./release/driver.ts";
import { UpstreamGuard, UpstreamReadings, type DeclaredUpstreams } from "./release/upstream-guard.ts";
import { upstreamRoutes } from "./release/upstream-routes.ts";
import { archiveRoutes } from "./release/archive-routes.ts";
import { releaseRoutes } from "./release/routes.ts";
import { rolloutRoutes } from "./http/rollout-routes.ts";
import { SqliteRolloutState } from "./rollouts/sqlite-state.ts";
import { RolloutStore } from "./rollouts/store.ts";
import { readStatsBaseline } from "./stats/baseline.ts";
import { AJV_OPTIONS } from "./rollouts/validate.ts";
import { statsRoutes } from "./stats/routes.ts";
import { systemRoutes } from "./system/routes.ts";
import { ControllerTelemetry } from "./telemetry.ts";
import { WebhookJudges } from "./release/webhook-judge.ts";
import { notificationRoutes } from "./notify/routes.ts";
import { setupNotifications, type NotificationOptions } from "./notify/setup.ts";
import type { NotificationDispatcher } from "./notify/dispatcher.ts";
import type { NotificationOutbox } from "./notify/outbox.ts";
import { NotificationsInput } from "./engine/index.ts";
import { openKubeState, type KubeState, type KubeStateOptions } from "./kube-state/index.ts";

export interface BuildAppOptions {
  /** Envoy admin base URLs to read stats from, e.g. ["http://127.0.0.1:9901"]. */
  envoyAdminUrls?: string[];
  /** Per admin endpoint; default 2000 ms. */
  envoyAdminTimeoutMs?: number;
  /** Where the built-in gates read the filter's counts: every Envoy admin endpoint (default) or Prometheus. */
  metrics?: MetricSourceKind;
  /** Replaces the counts source chosen by `metrics` (tests). */
  metricProvider?: MetricProvider;
  /**
   * Where the stage window's wait reads the proxies' config versions (engine/propagation.ts). Default: from the
   * counts' source; none (no wait) with a `metricProvider` given, whose counts come from where no proxy can be asked.
   */
  configVersions?: ConfigVersionSource | null;
  /** The stage window's wait: every proxy, else `share` of them after `waitSeconds` (default 0.95 after 30 s). */
  propagation?: PropagationPolicy;
  /** The sample-ratio check (default p < 0.001 over at least 200 requests; p 0: off). */
  sampleRatio?: SampleRatioPolicy;
  /** Fixed config epoch (tests); random 16 hex characters otherwise. */
  epoch?: string;
  clock?: () => Date;
  /** Open event streams at most (both stream routes); an eighth are kept for the API token. Default 256. */
  maxEventStreams?: number;
  /** Engine tick period for managed rollouts; default 5000 ms. 0: no timer (tests call modelroll.driver.tick()). */
  tickIntervalMs?: number;
  /** Prometheus base URL for PromQL gates (and the counts with metrics "prometheus"), e.g. http://127.0.0.1:9090. */
  prometheusUrl?: string;
  /** With metrics "prometheus": Prometheus' newest sample may lag the tick by at most this; default 60 000 ms. */
  prometheusMaxLagMs?: number;
  /** Release policy overrides (engine DEFAULT_POLICY: every rule on). */
  policy?: Partial<Policy>;
  /**
   * SQLite state file: rollouts, weights, engine state and the decision history survive a restart, which
   * resumes them. Default ":memory:" (nothing kept; the server entry points default to a file).
   */
  stateFile?: string;
  /** Start with an empty state file (what it held is copied aside first; see SqliteRolloutState). */
  freshState?: boolean;
  /** Bearer token for writes (and reads). Without it the API is open. */
  apiToken?: string;
  /** Read-only bearer token for the filters' config long-poll (and any GET). */
  filterToken?: string;
  /** More ways the filter config reaches the proxies, beside the long-poll (filter-config/distributor.ts). */
  configDistributors?: ConfigDistributor[];
  /** How the config reaches the proxies: the long-poll (default), istiod (the WasmPlugin), or both (filter-config/delivery.ts). */
  configDelivery?: ConfigDeliveryOptions;
  logger?: FastifyServerOptions["logger"];
  /** Telemetry history kept this long (default 14 days). */
  seriesRetentionHours?: number;
  /** Telemetry snapshots of rollouts the engine does not step, this often; default the engine tick (0: no timer). */
  seriesIntervalMs?: number;
  /** Where the dashboard's built files are (default build/dashboard). */
  dashboardDir?: string;
  /** The controller's address as people and receivers reach it, for links in notifications and judge questions. */
  publicUrl?: string;
  /** Controller-wide notification targets and delivery settings (README, Notifications). */
  notifications?: NotificationOptions;
  /** How often the Envoys are asked which hosts each cluster reaches (the views' `variants`); default 10 000 ms, 0: only at start. */
  upstreamsIntervalMs?: number;
  /**
   * What each Envoy cluster reaches, as the launcher configured it (`npm start`: cluster name -> URL). Each
   * rollout is kept on the upstreams it was tested against (release/upstream-guard.ts); without this the
   * controller reads them from the Envoy admins' /clusters.
   */
  upstreams?: DeclaredUpstreams;
  /**
   * Who decides among several replicas (kube/lease.ts): only the leader steps rollouts, delivers notifications
   * and drives the `configDistributors`; every replica serves the API, the dashboard, the streams and the
   * long-poll. Default: one controller, always the leader.
   */
  leadership?: Leadership;
  /** More reasons this replica cannot serve, for /readyz (Kubernetes mode: a lost watch); none by default. */
  notReady?: () => string[];
  /**
   * Kubernetes mode: elect the leader among replicas with this Lease in the `kube` namespace (kube/lease.ts).
   * Absent (or `leadership` given): no election, this replica always leads (one replica only).
   */
  leaderElection?: {
    leaseName: string;
    timing?: Partial<LeaseTiming>;
    identity?: string;
    /** A client for the Lease alone, with a timeout shorter than the renew deadline (closed with the app); default the kube client. */
    leaseClient?: KubeClient;
  };
  /**
   * Kubernetes mode (`--state kube`): ModelRollouts in this namespace are the state; the store is their
   * watch-fed cache (kube-state/). The state file is then only the notification outbox and the series (":memory:").
   */
  kube?: KubeStateOptions;
}

interface ModelrollContext {
  store: RolloutStore;
  /** The state file behind the store (its path, and what a fresh start set aside). */
  state: SqliteRolloutState;
  /** The filters' config long-poll (GET /v1/filter-config), the first of the config distributors. */
  longPoll: LongPollDistributor;
  /** `--config-delivery`, and the WasmPlugin writer it asks for (null with long-poll). */
  configDelivery: ConfigDeliveryMode;
  wasmPlugin: WasmPluginDistributor | null;
  telemetry: ControllerTelemetry;
  metricProvider: MetricProvider;
  driver: RolloutDriver;
  series: SeriesStore;
  recorder: SeriesRecorder;
  /** The notification outbox (state file tables) and its delivery. */
  outbox: NotificationOutbox;
  dispatcher: NotificationDispatcher;
  /** Keeps rollouts on the upstreams they were tested against; `held` lists those it held when the app was built. */
  upstreams: { guard: UpstreamGuard; heldAtStart: string[] };
  /** What each Envoy cluster reaches, as the admin endpoints said last, for the views' `variants` (metrics/envoy-upstreams.ts). */
  envoyUpstreams: EnvoyUpstreams;
  leadership: Leadership;
  /** Kubernetes mode's sync with the API server; null with a state file. */
  kube: KubeState | null;
}

declare module "fastify" {
  interface FastifyInstance {
    modelroll: ModelrollContext;
  }
}

export async function buildApp(options: BuildAppOptions = {}): Promise<FastifyInstance> {
  // Before anything is opened (the state file): a bad token or metric source is a startup error, not a leak.
  checkTokens({ apiToken: options.apiToken, filterToken: options.filterToken });
  const sources = metricSources(options);
  const delivery = options.configDelivery ?? { mode: "long-poll" };
  const app = Fastify({
    logger: options.logger ?? false,
    // One set of ajv options for every route and for validateRolloutSpec (also run offline by `modelroll lint`).
    ajv: { customOptions: AJV_OPTIONS },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // Also before the state file: istiod delivery without a WasmPlugin named is a startup error.
  const wasmPlugin = wasmPluginDistributor(delivery, app.log);
  // Opened (and locked) here and handed to the store, which never opens one itself: the context keeps it, so
  // the caller can read what a fresh start set aside, and the close hooks below close it.
  const state = new SqliteRolloutState(options.stateFile ?? ":memory:", { fresh: options.freshState });
  const upstreams = new EnvoyUpstreams(options.envoyAdminUrls ?? [], { timeoutMs: options.envoyAdminTimeoutMs });
  let store: RolloutStore;
  // Before the store: a rollout created is recorded against what its clusters reach (a bad declared URL is a startup error).
  let readings: UpstreamReadings;
  try {
    readings = new UpstreamReadings({ declared: options.upstreams, adminUrls: options.envoyAdminUrls, timeoutMs: options.envoyAdminTimeoutMs });
  } catch (error) {
    state.close();
    throw error;
  }
  let notifications: ReturnType<typeof setupNotifications>;
  let kube: KubeState | null = null;
  // Who decides: the Lease's holder among replicas (Kubernetes mode with election), else this one alone.
  let elector: LeaderElector | null = null;
  if (!options.leadership && options.kube && options.leaderElection) {
    const election = options.leaderElection;
    elector = new LeaderElector({
      api: kubeLeaseApi(election.leaseClient ?? options.kube.client, options.kube.namespace, election.leaseName),
      identity: election.identity,
      timing: election.timing,
      log: app.log,
    });
  }
  const leadership: Leadership = options.leadership ?? elector ?? SOLE_LEADER;
  try {
    // Kubernetes mode: what the API server holds, listed before the store is built from it. Its status writes
    // carry the leader term (fencing); only the leader acts on kubectl's changes.
    if (options.kube)
      kube = await openKubeState({
        ...options.kube,
        client: fencedClient(options.kube.client, ROLLOUT_PLURAL, leadership, DECISIONS_PLURAL),
        acting: () => leadership.isLeader() && (options.kube?.acting?.() ?? true),
        log: options.kube.log ?? app.log,
        clock: options.clock,
      });
    // Deliveries run on real time (retries, expiry), whatever clock the engine is given.
    notifications = setupNotifications(state, {
      ...options.notifications,
      fresh: options.freshState,
      publicUrl: options.publicUrl,
      upstreams: upstreams.lookup,
      log: app.log,
    });
    // The store writes through the notifying persistence: each decision's events in the decision's transaction.
    store = new RolloutStore({
      epoch: options.epoch,
      clock: options.clock,
      policy: options.policy,
      state: kube ? kube.persistence(notifications.persistence) : notifications.persistence,
      upstreamsAt: (spec, at) => readings.upstreamsOf(spec, at),
    });
  } catch (error) {
    state.close();
    kube?.close();
    options.leaderElection?.leaseClient?.close();
    throw error;
  }
  if (store.resumed) app.log.info({ stateFile: options.stateFile, rollouts: store.size, version: store.version }, "resumed from the state file");
  // Declared upstreams are compared now, before any filter can fetch a config; read ones when the app is ready.
  const guard = new UpstreamGuard({ store, readings, clock: options.clock, log: app.log });
  const heldAtStart = guard.check();
  const longPoll = new LongPollDistributor();
  // Pushing distributors (the WasmPlugin, any given) push only while this replica leads; the long-poll is served by
  // every replica from the same committed ModelRollouts.
  const pushing = [...(wasmPlugin ? [wasmPlugin] : []), ...(options.configDistributors ?? [])];
  const pushers = pushing.map((d) => (leadership === SOLE_LEADER ? d : new LeaderOnlyDistributor(d, leadership)));
  const stopDistribution = startDistribution(store, [longPoll, ...pushers], {
    onError: (distributor, error) => app.log.error({ err: error, distributor: distributor.kind }, "filter config distributor failed"),
  });
  const telemetry = new ControllerTelemetry(store, () => longPoll.held);
  const clock = options.clock ?? (() => new Date());
  const clockMs = options.clock ? () => clock().getTime() : Date.now;
  const { outbox, dispatcher } = notifications;
  dispatcher.registerMetrics(telemetry.registry);
  wasmPlugin?.registerMetrics(telemetry.registry);
  dispatcher.deliverWhile(() => leadership.isLeader());
  telemetry.watchLeadership(leadership);
  const series = new SeriesStore(state.database, { retentionHours: options.seriesRetentionHours, fresh: options.freshState, clock: clockMs });
  const metricProvider = options.metricProvider ?? sources.counts;
  const recorder = new SeriesRecorder({ store, series, metricProvider, clock: clockMs, log: app.log });
  const driver = new RolloutDriver({
    store,
    upstreams: upstreams.lookup,
    metricProvider,
    // No wait in Kubernetes mode yet: each replica numbers the config it serves on its own, so a filter polling a
    // follower reports a version the leader cannot compare (seen as "another controller's" in the failover tests).
    configVersions: options.configVersions !== undefined ? options.configVersions : options.metricProvider || options.kube ? null : sources.versions,
    ...(options.propagation ? { propagation: options.propagation } : {}),
    ...(options.sampleRatio ? { sampleRatio: options.sampleRatio } : {}),
    clock: options.clock,
    judges: new WebhookJudges({ clock: options.clock, log: app.log, publicUrl: options.publicUrl, registry: telemetry.registry }),
    ...(sources.promql ? { promql: sources.promql } : {}),
    log: app.log,
    leading: () => leadership.isLeader(),
    onTick: (_report, seconds) => telemetry.tickSeconds.observe(seconds),
    onStep: (rollout, result, seconds, counts, now) => {
      recorder.record(rollout, counts, now, result.evaluation);
      telemetry.evaluationSeconds.observe(seconds);
      for (const m of result.evaluation?.measurements ?? []) telemetry.gateEvaluations.inc({ gate: m.gate, result: m.status });
    },
  });
  if (kube) kube.attach(app, store, { statsBaseline: (name) => readStatsBaseline(metricProvider, name, clock()), registry: telemetry.registry });
  app.decorate("modelroll", {
    store,
    state,
    longPoll,
    configDelivery: delivery.mode,
    wasmPlugin,
    telemetry,
    metricProvider,
    driver,
    series,
    recorder,
    outbox,
    dispatcher,
    upstreams: { guard, heldAtStart },
    envoyUpstreams: upstreams,
    leadership,
    kube,
  });
  app.decorate("upstreamLookup", upstreams.lookup);

  installSerializerCache(app);
  installErrorHandling(app);
  installBrowserGuard(app, { openApi: options.apiToken === undefined });
  installAuth(app, { apiToken: options.apiToken, filterToken: options.filterToken });
  registerBodyParsers(app);
  // Held long-polls would keep server.close() waiting for their full timeout; release them first.
  app.addHook("preClose", async () => {
    // First: stop deciding and release the Lease, so a follower takes over at its next look (a rolling update).
    await elector?.stop();
    options.leaderElection?.leaseClient?.close();
    await upstreams.stop();
    await guard.stop();
    await driver.stop();
    await recorder.stop();
    // Before the state file closes: deliveries under way are recorded (or left pending for the next start).
    await dispatcher.stop();
    // After the engine stopped: the last decisions' writes reach the API server before the connections close.
    await kube?.stop();
    stopDistribution();
    state.close();
  });
  app.addHook("onClose", async () => {
    stopDistribution();
    state.close();
  });

  await app.register(swagger, {
    // Shared schemas (app.addSchema) under their $id rather than def-N.
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === "string" ? json.$id : `def-${i}`) },
    openapi: {
      openapi: "3.0.3",
      info: {
        title: "modelroll controller",
        description: "Rollouts of ML models on Envoy: weighted canary, sticky users, instant rollback.",
        version: "1",
      },
      tags: [
        { name: "rollouts", description: "Rollout specs, weights and rollback" },
        { name: "filter", description: "Config for the Envoy Wasm filter" },
        { name: "system", description: "Health" },
      ],
    },
  });
  // Not referenced by a route (release keys are checked by the engine's parser, which points inside them):
  // listed under components so the OpenAPI document still says what a spec's `notifications` may hold.
  app.addSchema({ $id: "NotificationsInput", ...NotificationsInput });
  await app.register(systemRoutes, { telemetry, replica: () => replicaStatus(leadership, options.notReady?.() ?? []) });
  await app.register(rolloutRoutes, { store, clock: options.clock, statsBaseline: (name) => readStatsBaseline(metricProvider, name, clock()) });
  await app.register(releaseRoutes, { store, clock: options.clock });
  await app.register(upstreamRoutes, { guard });
  await app.register(archiveRoutes, { store });
  await app.register(statsRoutes, { store, metricProvider, clock });
  await app.register(filterConfigRoutes, { longPoll, telemetry, served: longPollServed(delivery.mode) });
  // One budget of open streams for both stream routes, with slots kept for the API token (events/slots.ts).
  const slots = new StreamSlots(options.maxEventStreams ?? DEFAULT_MAX_EVENT_STREAMS);
  await app.register(eventRoutes, { store, slots });
  await app.register(allEventRoutes, { store, observed: (name) => recorder.observedCanaryPercent(name), registry: telemetry.registry, slots });
  await app.register(seriesRoutes, { store, series, recorder, clock });
  await app.register(sessionRoutes, { apiToken: options.apiToken, filterToken: options.filterToken });
  await app.register(dashboardStatic, { dir: options.dashboardDir });
  await app.register(notificationRoutes, { outbox });
  const tickIntervalMs = options.tickIntervalMs ?? 5000;
  // Read upstreams (no launcher declared them): the first reading before the server listens, then every tick.
  if (readings.reads)
    app.addHook("onReady", async () => {
      heldAtStart.push(...(await guard.refresh()));
      guard.start(tickIntervalMs);
    });
  if (tickIntervalMs > 0) app.addHook("onReady", async () => driver.start(tickIntervalMs));
  // Read at start (before the first view is asked for, as far as it answers in time), then refreshed.
  app.addHook("onReady", async () => {
    await upstreams.refresh();
    const every = options.upstreamsIntervalMs ?? 10_000;
    if (every > 0) upstreams.start(every);
  });
  if (elector) {
    const running = elector;
    // After the watch started (kube.attach's hook came first): a new leader acts on what kubectl changed while it followed.
    running.onChange((role) => {
      if (role === "leader") void kube?.reconciler?.all().catch((error) => app.log.warn({ err: error }, "reconciling on becoming leader failed"));
    });
    app.addHook("onReady", async () => running.start());
  }
  // Deliveries start with the app, also without an engine timer (a restart sends what the outbox holds).
  app.addHook("onReady", async () => dispatcher.start());
  const seriesIntervalMs = options.seriesIntervalMs ?? tickIntervalMs;
  if (seriesIntervalMs > 0) app.addHook("onReady", async () => recorder.start(seriesIntervalMs));
  return app;
}
