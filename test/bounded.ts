/**
 * A bounded wait: `promise`, or a failure naming `what` once `ms` have passed. The bound is a deadline far past
 * the expected time (so a hang fails with a message instead of the test timeout), never a speed assertion.
 */
export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still waiting after ${ms} ms for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}
