/**
 * Before anything starts: is every address the command will listen on free? Envoy listens with SO_REUSEPORT,
 * so a second Envoy on a taken data-plane port would start "fine" and silently share its traffic with the
 * old one; and a taken admin port would answer /ready for the old Envoy. A plain bind (no SO_REUSEPORT) here
 * fails on both, before anything is printed as running.
 */
import { createServer } from "node:net";
import type { HostPort } from "../envoy/bootstrap.ts";
import { describePid, portListeners, processCommand, processParentAndGroup } from "../proc.ts";
import type { PlanResult } from "./start-plan.ts";

export interface Listener extends HostPort {
  /** What listens there, for the message: "Envoy admin (--admin)". */
  what: string;
}

/** Resolves null when host:port could be bound (and is released again), else the error code (EADDRINUSE, ...). */
export function tryBind(host: string, port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(null)));
  });
}

/** Every address `npm start` listens on (with --models, no demo models start). */
export function startListeners(plan: Extract<PlanResult, { plan: unknown }>["plan"], manyModels: boolean): Listener[] {
  return [
    { ...plan.listen, what: "data plane (--listen)" },
    { ...plan.controller, what: "controller API (--controller)" },
    { ...plan.admin, what: "Envoy admin (--admin)" },
    ...(!manyModels && "demo" in plan.stable ? [{ ...plan.stable.demo, what: "demo stable model (MODELROLL_DEMO_STABLE)" }] : []),
    ...(!manyModels && "demo" in plan.canary ? [{ ...plan.canary.demo, what: "demo canary model (MODELROLL_DEMO_CANARY)" }] : []),
  ];
}

/** One line per address that cannot be bound, saying who holds it where /proc tells, and what to do. */
export async function busyPorts(listeners: readonly Listener[]): Promise<string[]> {
  const problems: string[] = [];
  const seen = new Map<string, string>();
  for (const l of listeners) {
    if (l.port === 0) continue;
    const key = `${l.host}:${l.port}`;
    const twice = seen.get(key);
    if (twice !== undefined) {
      problems.push(`${key} is given for both ${twice} and ${l.what}`);
      continue;
    }
    seen.set(key, l.what);
    const error = await tryBind(l.host, l.port);
    if (error === null) continue;
    if (error !== "EADDRINUSE") {
      problems.push(`${l.what}: cannot listen on ${key} (${error})`);
      continue;
    }
    problems.push(`${l.what}: ${key} is already in use${holderHint(l.port)}`);
  }
  return problems;
}

function holderHint(port: number): string {
  const pids = portListeners(port).filter((pid) => pid !== process.pid);
  if (pids.length === 0) return "";
  return ` by ${pids.map((pid) => `${describePid(pid)}${modelrollRole(pid)}`).join(", ")}`;
}

/** What one of our own processes holding a port is, and how to stop it; "" for anything else. */
function modelrollRole(pid: number): string {
  const command = processCommand(pid) ?? "";
  const isCli = (text: string) => /cli\/(start|controller|launcher)\.[jt]s/.test(text);
  if (command.includes("modelroll-envoy-")) {
    const parent = processParentAndGroup(pid)?.ppid;
    const parentCommand = parent !== undefined && parent > 1 ? processCommand(parent) : null;
    if (parentCommand !== null && isCli(parentCommand))
      return `: the Envoy of a modelroll that is running (pid ${parent}); stop that one with 'kill ${parent}'`;
    if (parentCommand === null) return `: an Envoy left over from an earlier modelroll run (its parent is gone); stop it with 'kill ${pid}'`;
    return `: an Envoy started by pid ${parent}; stop it with 'kill ${pid}'`;
  }
  if (isCli(command)) return `: a modelroll that is running; stop it with 'kill ${pid}'`;
  return "";
}

/** The advice after the list of busy ports. */
export const BUSY_PORT_ADVICE = "stop what holds them, or choose other addresses (--help lists the flags)";
