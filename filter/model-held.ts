// A request body the filter held to read its model (model-route.ts), and what a rollout does with it: the canary's
// model rewritten in the buffered body before it goes upstream (content-length follows), and the body a shadow
// call sends (the canary's model name, since the shadow of an adapter rollout is the adapter).
import { Buffer, getHeader, HeaderMap, incrementMetric, replaceHeader, setBuffer } from "./sdk/host";
import { ActiveRollout, PathGroup } from "./active";
import { findModel, MODEL_ROUTE_REWRITE_FAILED, MODEL_ROUTE_TOO_LARGE, MODEL_ROUTE_UNREADABLE, ModelSpan, rewriteModel } from "./model-route";
import { VARIANT_CANARY, VARIANT_NAMES, VARIANT_STABLE } from "./stats";

export class HeldBody {
  constructor(
    public body: ArrayBuffer,
    public span: ModelSpan,
  ) {}

  /**
   * Rewrites the model of a canary request in the buffered body; true when the request may go to the canary (no
   * rewrite needed, or done). False (counted): the host refused the new body, so the request goes on unchanged to stable.
   */
  rewriteForCanary(rollout: ActiveRollout): bool {
    const m = rollout.config.model;
    if (m === null || m.canaryModel.length == 0 || m.canaryModel == this.span.name) return true;
    const out = rewriteModel(this.body, this.span, m.canaryModel);
    const metrics = rollout.metrics.modelRoute;
    if (!setBuffer(Buffer.HttpRequestBody, 0, <u32>this.body.byteLength, out)) {
      if (metrics !== null) incrementMetric(metrics.failOpen[MODEL_ROUTE_REWRITE_FAILED]);
      return false;
    }
    // A body of another length with the old content-length would be cut or hang upstream; chunked bodies have none.
    if (getHeader(HeaderMap.RequestHeaders, "content-length") !== null) replaceHeader(HeaderMap.RequestHeaders, "content-length", out.byteLength.toString());
    if (metrics !== null) incrementMetric(metrics.rewritten);
    return true;
  }

  /** The body the shadow call sends: with the canary's model when the rollout rewrites it, else null (the request's). */
  forShadow(rollout: ActiveRollout): ArrayBuffer | null {
    const m = rollout.config.model;
    if (m === null || m.canaryModel.length == 0 || m.canaryModel == this.span.name) return null;
    return rewriteModel(this.body, this.span, m.canaryModel);
  }
}

/** The rollout a held body chose (null: none, not ours), and the body with its model when one was read. */
export class ModelChoice {
  constructor(
    public rollout: ActiveRollout | null,
    public held: HeldBody | null,
  ) {}
}

/**
 * The rollout for a held body (null when unreadable, or over the path's limit): the one matching its model, else the
 * path's rollout without a model, else none; a body it cannot judge is counted on the path's model rollouts.
 */
export function chooseByModel(group: PathGroup, body: ArrayBuffer | null, bodySize: u32, tooLarge: bool): ModelChoice {
  let held: HeldBody | null = null;
  if (!tooLarge && body !== null) {
    const span = findModel(body);
    if (span !== null) held = new HeldBody(body, span);
  }
  let rollout: ActiveRollout | null = null;
  if (held !== null) rollout = group.forModel(held.span.name);
  else group.failOpen(tooLarge ? MODEL_ROUTE_TOO_LARGE : MODEL_ROUTE_UNREADABLE);
  // The path holds up to its largest limit; a rollout with a smaller one leaves a body over it to stable.
  if (rollout !== null && !rollout.fitsModelBody(bodySize)) rollout = null;
  if (rollout === null) rollout = group.fallback;
  return new ModelChoice(rollout, held);
}

/**
 * The variant header's value, which picks the route: a canary selected by its model alone (canaryCluster false)
 * goes where stable's requests go, and is counted as the canary all the same.
 */
export function routeName(rollout: ActiveRollout, variant: i32): string {
  const m = rollout.config.model;
  if (variant == VARIANT_CANARY && m !== null && !m.canaryCluster) return VARIANT_NAMES[VARIANT_STABLE];
  return VARIANT_NAMES[variant];
}
