// The stream's state, shown on both pages.
import type { StreamState } from "./stream.ts";

export function LiveBadge(props: { state: StreamState; detail?: string | null }) {
  const text =
    props.state === "live"
      ? "live"
      : props.state === "paused"
        ? "paused (tab hidden)"
        : props.state === "connecting"
          ? "connecting…"
          : props.state === "refused"
            ? `refused: ${props.detail ?? ""}`
            : `reconnecting: ${props.detail ?? ""}`;
  return (
    <span class={`live live-${props.state}`} data-testid="live" data-state={props.state}>
      ● {text}
    </span>
  );
}
