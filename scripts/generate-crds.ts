// Writes deploy/istio/modelrollouts.crd.yaml from the rollout spec schema (controller/src/kube-state/crd.ts).
//   npx tsx scripts/generate-crds.ts
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { CRD_FILE, crdYaml } from "../controller/src/kube-state/crd-yaml.ts";
import { repoRoot } from "../controller/src/paths.ts";

writeFileSync(join(repoRoot, CRD_FILE), crdYaml());
console.log(`wrote ${CRD_FILE}`);
