// The traffic a README example says it needs: an open loop at a stated rate through Envoy, each request with
// the stated headers (a sticky key drawn from a pool of users, segment headers), so the example is judged at
// the traffic it promises and not at whatever a closed loop happens to reach.
import { Agent, request } from "node:http";

export interface TrafficOptions {
  /** e.g. http://127.0.0.1:10000/v1/predict */
  url: string;
  requestsPerSecond: number;
  /** The sticky header and how many distinct users send requests (each request picks one at random). */
  stickyHeader: string;
  users: number;
  /** Further headers per request (segment headers), given the request's index. */
  headers?: (i: number) => Record<string, string>;
  body?: string;
}

export interface Traffic {
  /** Requests answered so far, by HTTP status (0: no answer). */
  readonly counts: ReadonlyMap<number, number>;
  readonly sent: number;
  stop(): Promise<void>;
}

/** Starts sending; requests leave on schedule whether or not earlier ones were answered (open loop). */
export function startTraffic(options: TrafficOptions): Traffic {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const counts = new Map<number, number>();
  const inFlight = new Set<Promise<void>>();
  const interval = 1000 / options.requestsPerSecond;
  const started = performance.now();
  let sent = 0;
  let stopped = false;

  const one = (i: number) =>
    new Promise<void>((resolve) => {
      const user = `user-${Math.floor(Math.random() * options.users)}`;
      const req = request(
        options.url,
        {
          method: "POST",
          agent,
          timeout: 10_000,
          headers: { "content-type": "application/json", [options.stickyHeader]: user, ...(options.headers?.(i) ?? {}) },
        },
        (res) => {
          res.resume();
          res.on("end", () => {
            counts.set(res.statusCode ?? 0, (counts.get(res.statusCode ?? 0) ?? 0) + 1);
            resolve();
          });
        },
      );
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", () => {
        counts.set(0, (counts.get(0) ?? 0) + 1);
        resolve();
      });
      req.end(options.body ?? '{"features":[1,2,3]}');
    });

  // A timer per batch rather than per request: setTimeout cannot keep a 10 ms cadence on a loaded machine,
  // so each wake-up sends every request whose time has come.
  const timer = setInterval(() => {
    if (stopped) return;
    const due = Math.floor((performance.now() - started) / interval);
    while (sent < due) {
      const p = one(sent++);
      inFlight.add(p);
      void p.then(() => inFlight.delete(p));
    }
  }, 20);

  return {
    counts,
    get sent() {
      return sent;
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      await Promise.all(inFlight);
      agent.destroy();
    },
  };
}
