// The rollout view's `upstreams`: what the rollout was tested against, and the hold or note about a change
// (rollouts/upstreams.ts), for the API, the CLI's get and the dashboard.
import { Type, type Static } from "@sinclair/typebox";
import type { Rollout } from "../rollouts/model.ts";

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);
const Upstream = Type.Object({
  cluster: Type.String({ description: "The Envoy cluster the variant is routed to." }),
  endpoint: Type.String({ description: "host:port it reached (a DNS cluster by its host name; several joined by ', ')." }),
  model: Nullable(Type.String({ description: "The model label the spec declares for it (models.stable / models.canary)." })),
});

export const UpstreamsView = Type.Union(
  [
    Type.Object({
      tested: Nullable(
        Type.Object({
          stable: Upstream,
          canary: Upstream,
          since: Type.String({ format: "date-time" }),
          source: Type.String({ description: "How the controller knew them: npm start, or Envoy admin /clusters." }),
        }),
      ),
      held: Nullable(
        Type.Object({
          since: Type.String({ format: "date-time" }),
          reason: Type.String(),
          changes: Type.Array(Type.Object({ variant: Type.String(), was: Nullable(Upstream), now: Upstream })),
          withdrawn: Type.Object({ canaryPercent: Type.Number(), shadowPercent: Type.Number() }),
        }),
      ),
      note: Nullable(Type.String()),
    }),
    Type.Null(),
  ],
  {
    description:
      "The stable and canary upstreams the rollout was tested against; `held` when one changed since: canary traffic is withdrawn until POST accept-upstreams or a rollback. null: not known (no reading yet).",
  },
);
export type UpstreamsView = Static<typeof UpstreamsView>;

export function upstreamsView(rollout: Rollout): UpstreamsView {
  const u = rollout.upstreams;
  if (!u) return null;
  return { tested: u.tested, held: u.hold, note: u.note };
}
