import { randomBytes } from 'node:crypto';

/**
 * Prefixed, time-sortable ids: `<prefix>_<10 chars of ms time><16 chars of randomness>` in
 * Crockford base32. Sorting by id sorts by creation time, which is what cursor pagination of
 * the delivery history relies on (newest first = id descending).
 */
export type IdPrefix = 'acc' | 'key' | 'wh' | 'evt' | 'dlv' | 'att' | 'ps' | 'aud';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

// Random bytes are drawn in blocks: one randomBytes call per id costs more than the id.
let pool = Buffer.alloc(0);
let poolOffset = 0;
function random10(): Buffer {
  if (poolOffset + 10 > pool.length) {
    pool = randomBytes(4096);
    poolOffset = 0;
  }
  const out = pool.subarray(poolOffset, poolOffset + 10);
  poolOffset += 10;
  return out;
}

export function encodeTime(ms: number): string {
  let out = '';
  let t = ms;
  for (let i = 0; i < 10; i++) {
    out = ALPHABET[t % 32]! + out;
    t = Math.floor(t / 32);
  }
  return out;
}

function encodeRandom(bytes: Buffer): string {
  // 80 bits -> 16 base32 chars, 5 bits at a time.
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(acc >> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  return out;
}

export function newId(prefix: IdPrefix, now: number = Date.now()): string {
  return `${prefix}_${encodeTime(now)}${encodeRandom(random10())}`;
}

/**
 * The lowest id of this prefix made at `ms` or later: ids made before `ms` sort below it, so
 * `id < idFloor(prefix, ms)` selects by creation time through the primary key.
 */
export function idFloor(prefix: IdPrefix, ms: number): string {
  return `${prefix}_${encodeTime(ms)}`;
}

const ID_RE = /^[a-z]{2,3}_[0-9A-HJKMNP-TV-Z]{26}$/;
/** Cheap shape check so malformed ids answer 404 without touching the database. */
export function isId(prefix: IdPrefix, value: string): boolean {
  return value.startsWith(prefix + '_') && ID_RE.test(value);
}
