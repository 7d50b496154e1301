// A TCP proxy on 127.0.0.1 for the Kubernetes-mode tests: in front of the API server for one replica (cut() is a
// network partition: open connections are dropped and new ones are held, unanswered, like a dead route), or in
// front of several controller replicas as their Service (each connection goes to the first backend that
// accepts it, trying them in turn from a rotating start, so a killed replica is skipped).
import { createConnection, createServer, type Server, type Socket } from "node:net";

export interface TcpProxy {
  port: number;
  url(scheme: string): string;
  /** Partition: drop every open connection; hold new ones unanswered until heal(). */
  cut(): void;
  heal(): void;
  /** Replace the backends (ports on 127.0.0.1). */
  setBackends(ports: number[]): void;
  close(): Promise<void>;
}

export async function startTcpProxy(backends: number[]): Promise<TcpProxy> {
  let targets = [...backends];
  let cut = false;
  let next = 0;
  const open = new Set<Socket>();
  const held = new Set<Socket>();
  const track = (s: Socket) => {
    open.add(s);
    s.on("close", () => open.delete(s));
  };
  const connect = (client: Socket, tries: number) => {
    if (tries >= targets.length) {
      client.destroy();
      return;
    }
    const port = targets[(next + tries) % targets.length];
    const upstream = createConnection({ host: "127.0.0.1", port });
    track(upstream);
    let connected = false;
    upstream.once("connect", () => {
      connected = true;
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
    upstream.once("error", () => {
      if (!connected && !client.destroyed && !cut) connect(client, tries + 1);
      else client.destroy();
    });
    upstream.on("close", () => {
      if (connected) client.destroy();
    });
    client.on("close", () => upstream.destroy());
    client.on("error", () => upstream.destroy());
  };
  const server: Server = createServer({ pauseOnConnect: true }, (client) => {
    track(client);
    client.on("error", () => undefined);
    if (cut) {
      held.add(client);
      client.on("close", () => held.delete(client));
      return;
    }
    next = (next + 1) % Math.max(1, targets.length);
    connect(client, 0);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    url: (scheme) => `${scheme}://127.0.0.1:${port}`,
    cut() {
      cut = true;
      for (const s of open) if (!held.has(s)) s.destroy();
    },
    heal() {
      cut = false;
      for (const s of held) s.destroy();
      held.clear();
    },
    setBackends(ports) {
      targets = [...ports];
    },
    async close() {
      for (const s of open) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
