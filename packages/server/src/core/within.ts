/**
 * Waits for `p` at most `ms` milliseconds: true if it settled (either way) in time. The timer
 * is cleared as soon as the race ends, so it never keeps a process alive on its own.
 */
export async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((r) => (timer = setTimeout(() => r(false), Math.max(0, ms))));
  try {
    return await Promise.race([p.then(() => true, () => true), late]);
  } finally {
    clearTimeout(timer);
  }
}
