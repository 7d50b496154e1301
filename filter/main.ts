// Entry point of filter.wasm: the ABI exports, the host allocator, and our root context.
import { setRootContextFactory, RootContextBase } from "./sdk/dispatch";
import { ModelrollRoot } from "./filter";
import "./sdk/abort";

export {
  proxy_abi_version_0_2_1, proxy_on_context_create, proxy_on_vm_start, proxy_validate_configuration,
  proxy_on_configure, proxy_on_tick, proxy_on_http_call_response, proxy_on_queue_ready, proxy_on_foreign_function,
  proxy_on_request_headers, proxy_on_request_body, proxy_on_request_trailers, proxy_on_request_metadata,
  proxy_on_response_headers, proxy_on_response_body, proxy_on_response_trailers, proxy_on_response_metadata,
  proxy_on_log, proxy_on_done, proxy_on_delete,
} from "./sdk/dispatch";
export { malloc } from "@gcoredev/proxy-wasm-sdk-as/assembly/malloc";

setRootContextFactory((id: u32): RootContextBase => new ModelrollRoot(id));
