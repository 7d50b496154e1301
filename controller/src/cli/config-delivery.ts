// The Kubernetes client istiod delivery writes the WasmPlugin with: the state's (--state kube) when there is one,
// else from --kubeconfig (or MODELROLL_KUBECONFIG), else the pod's service account.
import type { ConfigDeliveryOptions } from "../filter-config/delivery.ts";
import { KubeClient } from "../kube/client.ts";

export function configDelivery(
  plan: { mode: ConfigDeliveryOptions["mode"]; wasmPlugin?: { namespace: string; name: string }; kubeconfig?: string },
  stateClient?: KubeClient,
): ConfigDeliveryOptions {
  if (!plan.wasmPlugin) return { mode: plan.mode };
  const client = stateClient ?? (plan.kubeconfig ? KubeClient.fromKubeconfig(plan.kubeconfig) : KubeClient.inCluster());
  return { mode: plan.mode, wasmPlugin: { ...plan.wasmPlugin, client } };
}
