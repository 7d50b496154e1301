// Entry point of filter.wasm: the ABI exports, the host allocator, and our root context.
import { setRootContextFactory, RootContextBase } from "./sdk/dispatch";
import { ModelrollRoot } from "./root";
import "./sdk/abort";

// Only the callbacks the filter uses are exported: Envoy skips a callback the module does not export,
// and each one it calls is a VM entry per request (body callbacks: per chunk; they return at once for
// requests that are not mirrored).
export {
  proxy_abi_version_0_2_1,
  proxy_on_context_create,
  proxy_on_vm_start,
  proxy_on_configure,
  proxy_on_tick,
  proxy_on_http_call_response,
  proxy_on_request_headers,
  proxy_on_request_body,
  proxy_on_response_headers,
  proxy_on_response_body,
  proxy_on_delete,
} from "./sdk/dispatch";
export { malloc } from "./sdk/malloc";

setRootContextFactory((id: u32): RootContextBase => new ModelrollRoot(id));
