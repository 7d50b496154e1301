// Asks for the controller's token. The token is checked with GET /v1/session before it is kept (in this
// tab's sessionStorage), so a wrong one is told at once and never stored.
import { useState } from "preact/hooks";
import { ApiError, checkSession, storeToken } from "./api.ts";

export function TokenPrompt(props: { message: string | null; onAccepted: (token: string) => void }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | null>(props.message);
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    const given = token.trim();
    if (given === "") return setError("Enter a token.");
    setBusy(true);
    try {
      const session = await checkSession(given);
      if (session.tokensRequired && session.access === null) throw new ApiError(401, "the token was not accepted", null);
      storeToken(given);
      setToken("");
      props.onAccepted(given);
    } catch (e) {
      setError(e instanceof ApiError && e.status === 401 ? `Wrong token: ${e.message}` : `Could not check the token: ${(e as Error).message}`);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="card token" onSubmit={submit} data-testid="token-form">
      <h2>This controller needs a token</h2>
      <p class="muted">
        The API token may read and act; the read-only (filter) token may only look. The token is kept in this browser tab only (sessionStorage) and sent as an
        Authorization header; closing the tab forgets it.
      </p>
      <label>
        Token{" "}
        <input type="password" autocomplete="off" value={token} onInput={(e) => setToken((e.target as HTMLInputElement).value)} data-testid="token-input" />
      </label>
      <button type="submit" disabled={busy} data-testid="token-submit">
        Sign in
      </button>
      {error && (
        <p class="error" role="alert" data-testid="token-error">
          {error}
        </p>
      )}
    </form>
  );
}
