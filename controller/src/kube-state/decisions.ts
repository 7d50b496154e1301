/**
 * A rollout's decision history in the API server: ModelRolloutDecisions objects `<rollout>-d<k>`, chunk k
 * holding decisions [k*N, (k+1)*N). A chunk is written whole from the writer's own history, so a write is
 * idempotent and a chunk a refused writer left longer than its rollout's status says is cut back on read
 * (status.decisions.count is the truth) and rewritten by the next writer.
 */
import type { Decision } from "../engine/index.ts";
import type { KubeClient, KubeObject, ResourceRef } from "../kube/client.ts";
import { API_VERSION, DECISIONS_KIND } from "./crd.ts";

/** Decisions per object: a decision with a full evaluation is 2-10 kB of JSON, so a chunk stays far below etcd's 1.5 MiB. */
export const DECISIONS_PER_CHUNK = 50;
export const ROLLOUT_LABEL = "modelroll.io/rollout";

export interface DecisionChunk extends KubeObject {
  rollout: string;
  rolloutUid?: string;
  first: number;
  count: number;
  decisions: Decision[];
}

export const chunkName = (rollout: string, index: number) => `${rollout}-d${index}`;
export const chunksFor = (count: number) => Math.ceil(count / DECISIONS_PER_CHUNK);

/** The history of each rollout from the chunks listed, cut to `counts` (the rollouts' status); name -> decisions. */
export function historyFromChunks(chunks: readonly DecisionChunk[], counts: ReadonlyMap<string, { count: number; uid?: string }>): Map<string, Decision[]> {
  const byRollout = new Map<string, DecisionChunk[]>();
  for (const chunk of chunks) {
    const want = counts.get(chunk.rollout);
    if (!want || (want.uid && chunk.rolloutUid && chunk.rolloutUid !== want.uid)) continue;
    const list = byRollout.get(chunk.rollout) ?? [];
    list.push(chunk);
    byRollout.set(chunk.rollout, list);
  }
  const out = new Map<string, Decision[]>();
  for (const [name, want] of counts) {
    const list = (byRollout.get(name) ?? []).sort((a, b) => a.first - b.first);
    const decisions: Decision[] = [];
    for (const chunk of list) if (chunk.first === decisions.length) decisions.push(...chunk.decisions);
    out.set(name, decisions.slice(0, want.count));
  }
  return out;
}

/** Writes the chunks holding decisions [from, all.length): each whole, created or replaced on its resourceVersion. */
export class DecisionWriter {
  readonly #client: KubeClient;
  readonly #ref: ResourceRef;
  /** name of chunk -> resourceVersion last seen. */
  readonly #versions = new Map<string, string>();
  /** Bytes of the last chunk written, for the report's figures. */
  lastBytes = 0;
  writes = 0;

  constructor(client: KubeClient, ref: ResourceRef) {
    this.#client = client;
    this.#ref = ref;
  }

  remember(chunk: DecisionChunk): void {
    if (chunk.metadata.resourceVersion) this.#versions.set(chunk.metadata.name, chunk.metadata.resourceVersion);
  }

  forget(rollout: string): void {
    for (const name of [...this.#versions.keys()]) if (name.startsWith(`${rollout}-d`)) this.#versions.delete(name);
  }

  async write(rollout: string, uid: string | undefined, all: readonly Decision[], from: number, owner?: KubeObject): Promise<void> {
    for (let index = Math.floor(from / DECISIONS_PER_CHUNK); index < chunksFor(all.length); index += 1) {
      const first = index * DECISIONS_PER_CHUNK;
      const decisions = all.slice(first, first + DECISIONS_PER_CHUNK);
      const name = chunkName(rollout, index);
      const body: DecisionChunk = {
        apiVersion: API_VERSION,
        kind: DECISIONS_KIND,
        metadata: {
          name,
          labels: { [ROLLOUT_LABEL]: rollout },
          ...(owner?.metadata.uid
            ? { ownerReferences: [{ apiVersion: String(owner.apiVersion), kind: String(owner.kind), name: rollout, uid: owner.metadata.uid }] }
            : {}),
        },
        rollout,
        ...(uid ? { rolloutUid: uid } : {}),
        first,
        count: decisions.length,
        decisions: decisions as Decision[],
      };
      this.lastBytes = JSON.stringify(body).length;
      this.writes += 1;
      const version = this.#versions.get(name);
      let written: DecisionChunk;
      if (version === undefined) {
        try {
          written = await this.#client.create(this.#ref, body);
        } catch (error) {
          // Left by an earlier run (or a refused writer): take it over, whole.
          if ((error as { status?: number }).status !== 409) throw error;
          const existing = await this.#client.get<DecisionChunk>(this.#ref, name);
          written = await this.#client.replace(this.#ref, { ...body, metadata: { ...body.metadata, resourceVersion: existing.metadata.resourceVersion } });
        }
      } else {
        written = await this.#client.replace(this.#ref, { ...body, metadata: { ...body.metadata, resourceVersion: version } });
      }
      this.remember(written);
    }
  }
}
