/** The Lease calls election makes (lease.ts), on the KubeClient: one named coordination.k8s.io/v1 Lease. */
import type { KubeClient, KubeObject, ResourceRef } from "./client.ts";
import type { LeaseApi, LeaseObject } from "./lease.ts";
import type { LeaseSpec } from "./lease-timing.ts";

export function leaseRef(namespace: string): ResourceRef {
  return { group: "coordination.k8s.io", version: "v1", plural: "leases", namespace };
}

export function kubeLeaseApi(client: KubeClient, namespace: string, name: string): LeaseApi {
  const ref = leaseRef(namespace);
  const object = (spec: LeaseSpec, resourceVersion?: string): KubeObject => ({
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: { name, namespace, ...(resourceVersion ? { resourceVersion } : {}), labels: { "app.kubernetes.io/managed-by": "modelroll" } },
    spec,
  });
  return {
    async get() {
      try {
        return await client.get<KubeObject & LeaseObject>(ref, name);
      } catch (error) {
        if ((error as { status?: number }).status === 404) return null;
        throw error;
      }
    },
    create: (spec) => client.create<KubeObject & LeaseObject>(ref, object(spec) as KubeObject & LeaseObject),
    replace: (spec, resourceVersion) => client.replace<KubeObject & LeaseObject>(ref, object(spec, resourceVersion) as KubeObject & LeaseObject),
  };
}
