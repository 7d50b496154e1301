// What a process holds, from /proc (Linux): resident memory, CPU time, established TCP connections.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) / 1024;
}

/** User + system CPU seconds the process has used (clock ticks of 1/100 s). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may hold spaces) in parentheses: utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The pid of the running process whose command line contains every one of `parts`, or null. */
export function findPid(parts: string[]): number | null {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, "utf8").replace(/\0/g, " ");
      if (parts.every((p) => cmd.includes(p))) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  return null;
}

function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1] as string);
    } catch {
      // closed meanwhile
    }
  }
  return inodes;
}

/** Established TCP connections: [local address, remote address, inode] as /proc/net/tcp* writes them. */
function established(): Array<[string, string, string]> {
  const rows: Array<[string, string, string]> = [];
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of readFileSync(table, "utf8").split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length >= 10 && f[3] === "01") rows.push([f[1] as string, f[2] as string, f[9] as string]);
    }
  }
  return rows;
}

/**
 * The process' established TCP connections: those on its listening `port` (accepted), without the ones this
 * process (the bench, calling the API) holds to it, and the others (outbound).
 */
export function tcpConnections(pid: number, port: number): { accepted: number; outbound: number } {
  const theirs = socketInodes(pid);
  const ours = socketInodes(process.pid);
  const rows = established();
  const ourEnds = new Set(rows.filter(([, , inode]) => ours.has(inode)).map(([local]) => local));
  let accepted = 0;
  let outbound = 0;
  for (const [local, remote, inode] of rows) {
    if (!theirs.has(inode)) continue;
    const localPort = Number.parseInt(local.split(":")[1] as string, 16);
    if (localPort !== port) outbound++;
    else if (!ourEnds.has(remote)) accepted++;
  }
  return { accepted, outbound };
}

/** "N connections accepted (the filters' polls), M outbound, R MiB" for a controller listening on `port`. */
export function controllerHolds(pid: number, port: number): { text: string; accepted: number; outbound: number; rss: number } {
  const c = tcpConnections(pid, port);
  const rss = rssMiB(pid);
  return { text: `${c.accepted} connections accepted, ${c.outbound} outbound, RSS ${rss.toFixed(0)} MiB`, ...c, rss };
}
