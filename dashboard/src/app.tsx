// The page shell: sign-in (when the controller wants a token), the top bar, and the two pages by path.
import { useEffect, useState } from "preact/hooks";
import { AUTH_EVENT, ApiError, checkSession, storeToken, storedToken } from "./api.ts";
import { TokenPrompt } from "./auth.tsx";
import { ListPage } from "./pages/list.tsx";
import { RolloutPage } from "./pages/rollout.tsx";

export type Access = "write" | "read";

type SessionState =
  | { status: "checking" }
  | { status: "need-token"; message: string | null }
  | { status: "ready"; access: Access; tokensRequired: boolean }
  | { status: "unreachable"; message: string };

export function navigate(path: string): void {
  history.pushState(null, "", path);
  window.dispatchEvent(new PopStateEvent("popstate"));
}

function routeOf(pathname: string): { page: "list" } | { page: "rollout"; name: string } {
  const match = /^\/rollouts\/([^/]+)\/?$/.exec(pathname);
  return match ? { page: "rollout", name: decodeURIComponent(match[1]) } : { page: "list" };
}

export function App() {
  const [session, setSession] = useState<SessionState>({ status: "checking" });
  const [path, setPath] = useState(location.pathname);

  const start = async (token: string | null, refusedMessage: string | null) => {
    try {
      const s = await checkSession(token);
      if (s.tokensRequired && s.access === null) return setSession({ status: "need-token", message: refusedMessage });
      setSession({ status: "ready", access: s.access ?? "write", tokensRequired: s.tokensRequired });
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        storeToken(null);
        return setSession({ status: "need-token", message: `The stored token was refused: ${error.message}` });
      }
      setSession({ status: "unreachable", message: (error as Error).message });
    }
  };

  useEffect(() => {
    void start(storedToken(), null);
    const onAuth = (event: Event) => {
      storeToken(null);
      setSession({ status: "need-token", message: `The controller refused the token: ${String((event as CustomEvent).detail ?? "")}` });
    };
    const onPop = () => setPath(location.pathname);
    window.addEventListener(AUTH_EVENT, onAuth);
    window.addEventListener("popstate", onPop);
    return () => {
      window.removeEventListener(AUTH_EVENT, onAuth);
      window.removeEventListener("popstate", onPop);
    };
  }, []);

  const signOut = () => {
    storeToken(null);
    setSession({ status: "need-token", message: null });
  };

  const route = routeOf(path);
  return (
    <div class="shell">
      <header class="topbar">
        <a
          class="brand"
          href="/"
          onClick={(e) => {
            e.preventDefault();
            navigate("/");
          }}
        >
          modelroll
        </a>
        {route.page === "rollout" && <span class="crumb">/ {route.name}</span>}
        <span class="spacer" />
        {session.status === "ready" && (
          <span class={`access access-${session.access}`} data-testid="access">
            {!session.tokensRequired ? "open API (loopback)" : session.access === "write" ? "API token" : "read-only token: actions hidden"}
          </span>
        )}
        {session.status === "ready" && session.tokensRequired && (
          <button type="button" class="link" onClick={signOut}>
            sign out
          </button>
        )}
      </header>
      <main>
        {session.status === "checking" && <p class="muted">Connecting to the controller…</p>}
        {session.status === "unreachable" && <p class="error">Cannot reach the controller: {session.message}</p>}
        {session.status === "need-token" && <TokenPrompt message={session.message} onAccepted={(token) => start(token, null)} />}
        {session.status === "ready" && route.page === "list" && <ListPage canWrite={session.access === "write"} />}
        {session.status === "ready" && route.page === "rollout" && <RolloutPage key={route.name} name={route.name} canWrite={session.access === "write"} />}
      </main>
    </div>
  );
}
