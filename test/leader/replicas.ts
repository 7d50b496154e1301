// Several compiled controllers (`npm run controller -- --state kube`, controller/dist/cli/controller.js) as real
// processes against one API server, each on its own loopback port, behind one TCP proxy that plays their
// Service (the filters' long-poll and the tests' API calls go through it, as in a cluster). Needs `npm run build`.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { freePort } from "../../controller/src/net.ts";
import type { ReplicaStatus } from "../../controller/src/system/routes.ts";
import { startTcpProxy, type TcpProxy } from "./tcp-proxy.ts";

const ENTRY = fileURLToPath(new URL("../../controller/dist/cli/controller.js", import.meta.url));

export interface Replica {
  index: number;
  port: number;
  url: string;
  child: ChildProcess;
  alive(): boolean;
  output(): string;
}

export interface Replicas {
  /** The Service in front of the live replicas. */
  service: TcpProxy;
  serviceUrl: string;
  list: Replica[];
  /** Starts replica `index` (none runs until started; again after a kill: same port, a new process and identity). */
  start(index: number): Promise<Replica>;
  /** kill -9: no clean shutdown, the Lease is not released. */
  kill(index: number): Promise<void>;
  /** SIGTERM: a clean shutdown (steps down, releases the Lease). */
  terminate(index: number): Promise<void>;
  status(index: number): Promise<ReplicaStatus | null>;
  /** The index of the replica that says it leads, or null. */
  leader(): Promise<number | null>;
  stop(): Promise<void>;
}

export interface ReplicaOptions {
  count: number;
  /** The kubeconfig each replica uses (a function: one replica may reach the API server through a proxy of its own). */
  kubeconfig: (index: number) => string;
  namespace?: string;
  envoyAdminUrls?: string[];
  tickMs?: number;
  args?: string[];
  env?: Record<string, string>;
}

export async function startReplicas(options: ReplicaOptions): Promise<Replicas> {
  const ports: number[] = [];
  for (let i = 0; i < options.count; i++) ports.push(await freePort());
  const service = await startTcpProxy(ports);
  const list: Replica[] = [];

  const start = async (index: number): Promise<Replica> => {
    const port = ports[index];
    const child = spawn(
      process.execPath,
      [
        ENTRY,
        "--listen",
        `127.0.0.1:${port}`,
        "--state",
        "kube",
        "--kubeconfig",
        options.kubeconfig(index),
        "--namespace",
        options.namespace ?? "default",
        "--envoy-admin",
        (options.envoyAdminUrls ?? ["http://127.0.0.1:1"]).join(","),
        "--tick-ms",
        String(options.tickMs ?? 500),
        ...(options.args ?? []),
      ],
      {
        env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", POD_NAME: `replica-${index}`, MODELROLL_LOG_LEVEL: "info", ...options.env },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let output = "";
    child.stdout!.setEncoding("utf8").on("data", (c: string) => (output += c));
    child.stderr!.setEncoding("utf8").on("data", (c: string) => (output += c));
    const alive = () => child.exitCode === null && child.signalCode === null;
    const until = Date.now() + 60_000;
    while (!output.includes("listening on")) {
      if (!alive()) throw new Error(`replica ${index} exited before listening:\n${output}`);
      if (Date.now() > until) {
        child.kill("SIGKILL");
        throw new Error(`replica ${index} not listening after 60 s:\n${output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const replica: Replica = { index, port, url: `http://127.0.0.1:${port}`, child, alive, output: () => output };
    list[index] = replica;
    return replica;
  };

  const ended = (replica: Replica) =>
    new Promise<void>((resolve) => {
      if (!replica.alive()) resolve();
      else replica.child.once("exit", () => resolve());
    });

  const status = async (index: number): Promise<ReplicaStatus | null> => {
    const replica = list[index];
    if (!replica?.alive()) return null;
    try {
      const response = await fetch(`${replica.url}/readyz`, { signal: AbortSignal.timeout(2000) });
      return (await response.json()) as ReplicaStatus;
    } catch {
      return null;
    }
  };

  return {
    service,
    serviceUrl: service.url("http"),
    list,
    start,
    status,
    async kill(index) {
      const replica = list[index];
      replica.child.kill("SIGKILL");
      await ended(replica);
    },
    async terminate(index) {
      const replica = list[index];
      replica.child.kill("SIGTERM");
      const timer = setTimeout(() => replica.child.kill("SIGKILL"), 15_000);
      await ended(replica);
      clearTimeout(timer);
    },
    async leader() {
      const statuses = await Promise.all(list.map((_, i) => status(i)));
      const leaders = statuses.flatMap((s, i) => (s?.role === "leader" ? [i] : []));
      return leaders.length === 1 ? leaders[0] : null;
    },
    async stop() {
      for (const replica of list) if (replica?.alive()) replica.child.kill("SIGKILL");
      await Promise.all(list.filter(Boolean).map(ended));
      await service.close();
    },
  };
}
