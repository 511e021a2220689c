import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, type Config } from './config/load.js';
import { sha256 } from './api/auth.js';
import { SecretBox } from './core/secret-box.js';
import type { Store } from './store/store.js';

/** What first start generates and keeps in the data dir (mode 0600). */
interface SecretsFile {
  admin_token_sha256?: string;
  secret_key_hex?: string;
}

export interface Secrets {
  adminTokenHash: Buffer;
  secretKey: Buffer;
  /** Set only when a new admin token was just generated: print it once, it is not stored. */
  newAdminToken: string | null;
}

export const secretsPath = (c: Config): string => join(c.dataDir, 'herald-secrets.json');

const HEX_32_BYTES = /^[0-9a-f]{64}$/i;

function readFile(path: string): SecretsFile {
  if (!existsSync(path)) return {};
  let file: SecretsFile;
  try {
    file = JSON.parse(readFileSync(path, 'utf8')) as SecretsFile;
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ? `cannot be read (${(e as Error).message})` : 'is not valid JSON';
    throw new ConfigError('HERALD_DATA_DIR', `${path} ${why}; fix or remove it (removing it generates a new admin token and secret key, and webhooks saved with the old key can no longer be read)`);
  }
  for (const field of ['secret_key_hex', 'admin_token_sha256'] as const) {
    const v = file?.[field];
    if (v !== undefined && (typeof v !== 'string' || !HEX_32_BYTES.test(v))) {
      throw new ConfigError('HERALD_DATA_DIR', `${path}: ${field} must be 64 hex characters; restore the file from a backup (a new secret key would leave stored webhook secrets unreadable)`);
    }
  }
  return file ?? {};
}

function writeFile(path: string, data: SecretsFile): void {
  try {
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, JSON.stringify(data, null, 2) + '\n', { mode: 0o600 });
    chmodSync(path, 0o600);
  } catch (e) {
    throw new ConfigError('HERALD_DATA_DIR', `cannot write ${path}, where the generated admin token hash and secret key are kept (${(e as Error).message}); make the folder writable, or set HERALD_ADMIN_TOKEN and HERALD_SECRET_KEY`);
  }
}

export const newAdminToken = (): string => 'hadm_' + randomBytes(24).toString('base64url');

/**
 * Admin token and secret key: from the environment when set; otherwise, with SQLite, generated
 * on first start and kept in the data dir (the admin token only as a hash). With PostgreSQL
 * several processes on several hosts must share them, so both must come from the environment.
 */
export function resolveSecrets(c: Config, opts: { rotateAdminToken?: boolean } = {}): Secrets {
  if (c.db.kind === 'postgres') {
    if (!c.adminToken) throw new ConfigError('HERALD_ADMIN_TOKEN', 'must be set when HERALD_DATABASE_URL is PostgreSQL (every process must accept the same token)');
    if (!c.secretKeyBytes) throw new ConfigError('HERALD_SECRET_KEY', 'must be set when HERALD_DATABASE_URL is PostgreSQL (every process must decrypt the same webhook secrets); generate one with: openssl rand -hex 32');
    return { adminTokenHash: sha256(c.adminToken), secretKey: c.secretKeyBytes, newAdminToken: null };
  }
  const path = secretsPath(c);
  const file = readFile(path);
  let changed = false;
  let secretKey = c.secretKeyBytes;
  if (!secretKey) {
    if (!file.secret_key_hex) {
      file.secret_key_hex = randomBytes(32).toString('hex');
      changed = true;
    }
    secretKey = Buffer.from(file.secret_key_hex, 'hex');
  }
  let token: string | null = null;
  let adminTokenHash: Buffer;
  if (c.adminToken && !opts.rotateAdminToken) {
    adminTokenHash = sha256(c.adminToken);
  } else {
    if (!file.admin_token_sha256 || opts.rotateAdminToken) {
      token = newAdminToken();
      file.admin_token_sha256 = sha256(token).toString('hex');
      changed = true;
    }
    adminTokenHash = Buffer.from(file.admin_token_sha256, 'hex');
  }
  if (changed) writeFile(path, file);
  return { adminTokenHash, secretKey, newAdminToken: token };
}

const KEY_CHECK = 'secret_key_check';
const KEY_CHECK_TEXT = 'herald: the secret key of this database';

/** Whether `key` opens `sealed` (and, given `expected`, to that text). */
function opens(box: SecretBox, sealed: string, expected?: string): boolean {
  try {
    const text = box.open(sealed);
    return expected === undefined || text === expected;
  } catch {
    return false;
  }
}

/**
 * Refuses to start with a secret key other than the one this database's webhook secrets and
 * header values were sealed with. Started anyway, the process could open none of them: every
 * delivery would fail, and webhooks it saved could be read by no other process.
 * Read-only, and run before migrating, so that such a process never migrates a database
 * others share. The database's recorded check value must open; a database without one (from
 * before migration 0008, or empty) passes when the key opens any of a few stored values, or
 * when none is stored: one value damaged, or sealed by a process with a wrong key before this
 * check existed, does not lock the right key out.
 */
export async function verifySecretKey(store: Store, key: Buffer): Promise<void> {
  const box = new SecretBox(key);
  const check = await databaseRight(() => store.getMeta(KEY_CHECK));
  if (check !== null) {
    if (!opens(box, check, KEY_CHECK_TEXT)) throw keyMismatch();
    return;
  }
  const sample = await databaseRight(() => store.someSealedValues(20));
  if (sample.length && !sample.some((v) => opens(box, v))) throw keyMismatch();
}

/**
 * After migrating: records the key in the database if none is yet (first writer wins), and
 * refuses if the one that stands is another's (two processes with different keys starting on
 * one new database).
 */
export async function recordSecretKey(store: Store, key: Buffer): Promise<void> {
  const box = new SecretBox(key);
  const standing = await databaseRight(() => store.putMetaOnce(KEY_CHECK, box.seal(KEY_CHECK_TEXT)));
  if (!opens(box, standing, KEY_CHECK_TEXT)) throw keyMismatch();
}

/** PostgreSQL's "permission denied": the role Herald connects as may not use a table. */
async function databaseRight<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (e) {
    if ((e as { code?: unknown } | null)?.code !== '42501') throw e;
    throw new ConfigError(
      'HERALD_DATABASE_URL',
      `the database role may not use Herald's tables (${(e as Error).message}); grant it SELECT, INSERT, UPDATE and DELETE on every table, including those a migration adds (docs/OPERATIONS.md)`,
    );
  }
}

const keyMismatch = (): ConfigError =>
  new ConfigError(
    'HERALD_SECRET_KEY',
    'this is not the key the database\'s webhook secrets were saved with, so none of them could be read. ' +
      'Start with that key: the HERALD_SECRET_KEY of the other processes, or, when it is unset, the herald-secrets.json ' +
      'that was in HERALD_DATA_DIR (by default the SQLite file\'s folder) when the database was made',
  );
