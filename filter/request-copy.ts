// A request's method, path, headers and body, copied as it passes (never held), for the two features that send
// it again: the shadow call and the output guard's call to stable.
import { HeaderPairs } from "./sdk/host";
import { BodyCopy } from "./body-copy";

export class RequestCopy {
  method: string = "GET";
  authority: string = "";
  names: Array<string> = [];
  values: Array<string> = [];
  body: BodyCopy;
  /** The whole request is in (its end of stream was seen, within the body limit). */
  complete: bool = false;
  /** What the shadow gets instead of the body, when the rollout rewrites the model for its canary (model-route.ts). */
  shadowBody: ArrayBuffer | null = null;

  /** Pseudo-headers, the variant header and hop-by-hop headers are not copied as headers. */
  constructor(
    pairs: HeaderPairs,
    variantHeader: string,
    public path: string,
    maxBody: i32,
  ) {
    this.body = new BodyCopy(maxBody);
    for (let i = 0; i < pairs.names.length; i++) {
      const name = pairs.names[i];
      if (name == ":method") this.method = pairs.values[i];
      else if (name == ":authority") this.authority = pairs.values[i];
      else if (name.startsWith(":") || name == variantHeader || isHopByHop(name)) continue;
      else {
        this.names.push(name);
        this.values.push(pairs.values[i]);
      }
    }
  }

  /** Header names for the call: pseudo-headers, a marker header, then the copied ones. */
  callHeaderNames(marker: string): Array<string> {
    const names = [":method", ":path", ":authority", marker];
    for (let i = 0; i < this.names.length; i++) names.push(this.names[i]);
    return names;
  }

  /** `bodyLength` >= 0: a copied content-length says that (the body sent may be a rewritten one). */
  callHeaderValues(markerValue: string, bodyLength: i32 = -1): Array<string> {
    const values = [this.method, this.path, this.authority, markerValue];
    for (let i = 0; i < this.values.length; i++) values.push(bodyLength >= 0 && this.names[i] == "content-length" ? bodyLength.toString() : this.values[i]);
    return values;
  }

  /** The body the shadow call sends: the canary's rewritten one, else the request's. */
  shadowCallBody(): ArrayBuffer | null {
    const b = this.shadowBody;
    return b !== null ? b : this.callBody();
  }

  /** The body to send, or null for none. */
  callBody(): ArrayBuffer | null {
    return this.body.size > 0 ? this.body.join() : null;
  }
}

/** Connection-level headers that must not be forwarded on another connection (RFC 9110 7.6.1). */
function isHopByHop(name: string): bool {
  return (
    name == "connection" ||
    name == "keep-alive" ||
    name == "transfer-encoding" ||
    name == "te" ||
    name == "upgrade" ||
    name == "proxy-connection" ||
    name == "trailer"
  );
}
