/**
 * What Linux's /proc says about other processes: who holds a lock on a file, who listens on a port, what a
 * pid is running. Used only to word error messages ("in use by pid 4242 (envoy -c ...)"); every function
 * answers null or [] where /proc is missing or unreadable, and the caller words its message without the pid.
 */
import { readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";

/** The command line of a process, NUL separators as spaces, cut to `max` characters; null if unknown. */
export function processCommand(pid: number, max = 160): string | null {
  try {
    const text = readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0+$/, "").replace(/\0/g, " ");
    if (text === "") return null;
    return text.length > max ? `${text.slice(0, max - 3)}...` : text;
  } catch {
    return null;
  }
}

/** True while the process exists and is not a zombie (a zombie has ended; it only waits to be reaped). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: it exists, owned by someone else.
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  return processState(pid) !== "Z";
}

/** The state letter of /proc/<pid>/stat (R, S, Z, ...), or null. */
function processState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // "pid (comm) S ppid pgrp ...": comm may contain spaces and parentheses, so read after the last ')'.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0] ?? null;
  } catch {
    return null;
  }
}

/** ppid and process group of a pid, from /proc/<pid>/stat. */
export function processParentAndGroup(pid: number): { ppid: number; pgrp: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { ppid: Number(fields[1]), pgrp: Number(fields[2]) };
  } catch {
    return null;
  }
}

/** Every pid /proc lists. */
export function allPids(): number[] {
  try {
    return readdirSync("/proc")
      .filter((d) => /^\d+$/.test(d))
      .map(Number);
  } catch {
    return [];
  }
}

/**
 * The pids holding a POSIX (fcntl) lock on the file, from /proc/locks: SQLite locks its database file this
 * way, and the kernel drops such a lock when its process ends, however it ends.
 */
export function lockHolders(path: string): number[] {
  let inode: number;
  try {
    inode = statSync(path).ino;
  } catch {
    return [];
  }
  let table: string;
  try {
    table = readFileSync("/proc/locks", "utf8");
  } catch {
    return [];
  }
  const pids = new Set<number>();
  // "1: POSIX  ADVISORY  WRITE 13059 fe:00:9979747 1073741824 1073742335"
  for (const line of table.split("\n")) {
    const m = /^\d+:\s+(?:->\s+)?POSIX\s+\S+\s+\S+\s+(\d+)\s+[0-9a-f]+:[0-9a-f]+:(\d+)\s/.exec(line);
    if (m && Number(m[2]) === inode) pids.add(Number(m[1]));
  }
  return [...pids];
}

/**
 * The pids with a listening TCP socket on the port (any address), from /proc/net/tcp{,6} and the socket
 * links in /proc/<pid>/fd. Processes of other users are not readable without privileges: then [].
 */
export function portListeners(port: number): number[] {
  const inodes = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      const [, local, , st, , , , , , inode] = line.trim().split(/\s+/);
      if (local === undefined || inode === undefined) continue;
      const localPort = parseInt(local.split(":")[1] ?? "", 16);
      // st 0A = LISTEN
      if (localPort === port && st === "0A") inodes.add(inode);
    }
  }
  if (inodes.size === 0) return [];
  const pids: number[] = [];
  for (const pid of allPids()) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode !== undefined && inodes.has(inode)) {
        pids.push(pid);
        break;
      }
    }
  }
  return pids;
}

/** "pid 4242 (envoy -c /tmp/...)" or "pid 4242". */
export function describePid(pid: number): string {
  const command = processCommand(pid);
  return command ? `pid ${pid} (${command})` : `pid ${pid}`;
}
