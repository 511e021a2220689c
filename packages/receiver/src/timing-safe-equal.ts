/**
 * Compares two byte strings in time that depends only on `expected`'s length, never on where
 * they differ. Unlike node's `crypto.timingSafeEqual` it does not throw when the lengths differ
 * (a receiver that throws there answers 500 to any garbage signature). Leaking the length is
 * harmless: the expected length is public (a SHA-256 MAC).
 */
export function timingSafeEqual(received: Uint8Array, expected: Uint8Array): boolean {
  let diff = received.length ^ expected.length;
  for (let i = 0; i < expected.length; i++) diff |= (received[i] ?? 0) ^ (expected[i] as number);
  return diff === 0;
}
