// The Kubernetes client istiod delivery writes the WasmPlugin with: from --kubeconfig (or KUBECONFIG), else the
// pod's service account.
import type { ConfigDeliveryOptions } from "../filter-config/delivery.ts";
import { KubeClient } from "../kube/client.ts";

export function configDelivery(plan: {
  mode: ConfigDeliveryOptions["mode"];
  wasmPlugin?: { namespace: string; name: string };
  kubeconfig?: string;
}): ConfigDeliveryOptions {
  if (!plan.wasmPlugin) return { mode: plan.mode };
  const client = plan.kubeconfig ? KubeClient.fromKubeconfig(plan.kubeconfig) : KubeClient.inCluster();
  return { mode: plan.mode, wasmPlugin: { ...plan.wasmPlugin, client } };
}
