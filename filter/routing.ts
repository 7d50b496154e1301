// Variant choice. A sticky key hashes to a bucket in [0, 10000); the request goes to the canary when
// its bucket is below the canary weight in basis points. Because the bucket of a key never changes,
// raising the weight only adds buckets: a user who saw the canary keeps seeing it.
import { RolloutConfig } from "./config-model";

export const BUCKETS: u32 = 10000;

/** FNV-1a over the rollout name, a separator and the key, then a 64-bit finalizer (splitmix64) for avalanche. */
export function hashKey(salt: string, key: string): u64 {
  let h: u64 = 0xcbf29ce484222325;
  const prime: u64 = 0x100000001b3;
  for (let i = 0; i < salt.length; i++) {
    h ^= <u64>salt.charCodeAt(i);
    h *= prime;
  }
  h ^= 0xff; // separator that no UTF-16 code unit of a name equals in this position
  h *= prime;
  for (let i = 0; i < key.length; i++) {
    const c = <u64>key.charCodeAt(i);
    h ^= c & 0xff;
    h *= prime;
    h ^= c >> 8;
    h *= prime;
  }
  return mix64(h);
}

export function mix64(x: u64): u64 {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9;
  x ^= x >> 27;
  x *= 0x94d049bb133111eb;
  x ^= x >> 31;
  return x;
}

/** Maps a uniform 64-bit value to [0, BUCKETS) by multiply-high, which avoids modulo bias. */
export function bucketOf(hash: u64): u32 {
  return <u32>(((hash >> 32) * <u64>BUCKETS) >> 32);
}

export function stickyBucket(rolloutName: string, key: string): u32 {
  return bucketOf(hashKey(rolloutName, key));
}

export function isCanary(bucket: u32, canaryBasisPoints: u32): bool {
  return bucket < canaryBasisPoints;
}

/** The rollout whose pathPrefix is the longest prefix of `path`, or null. */
export function matchRollout(rollouts: Array<RolloutConfig>, path: string): RolloutConfig | null {
  let best: RolloutConfig | null = null;
  for (let i = 0; i < rollouts.length; i++) {
    const r = rollouts[i];
    if (path.startsWith(r.pathPrefix) && (best === null || r.pathPrefix.length > best.pathPrefix.length)) best = r;
  }
  return best;
}

/** xorshift64* for requests without a sticky key. Seeded per worker; Math.random needs a host import Envoy lacks. */
export class RandomBuckets {
  private state: u64;
  constructor(seed: u64) {
    this.state = mix64(seed) | 1;
  }
  next(): u32 {
    let x = this.state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    this.state = x;
    return bucketOf(x * 0x2545f4914f6cdd1d);
  }
}
