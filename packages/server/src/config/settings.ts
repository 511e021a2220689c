/**
 * Every setting in one table: environment name, CLI flag, type, default and meaning. The same
 * table drives validation at start-up, `herald config` and docs/CONFIGURATION.md, and the
 * redacted start-up summary (settings marked `secret` are never printed or logged).
 */
export type SettingType = 'string' | 'int' | 'number' | 'bool' | 'enum' | 'url' | 'cidrs';

export interface Setting {
  env: string;
  key: keyof RawConfigKeys;
  type: SettingType;
  default: string;
  description: string;
  secret?: boolean;
  values?: readonly string[];
  /** What the docs say the setting accepts, where its type alone says too little. */
  accepts?: string;
  min?: number;
  max?: number;
}

// The keys of the resolved configuration that come straight from a setting.
export interface RawConfigKeys {
  databaseUrl: string;
  host: string;
  port: number;
  role: 'api' | 'worker' | 'all';
  publicUrl: string;
  dataDir: string;
  adminToken: string;
  secretKey: string;
  dev: boolean;
  deliveryTimeoutMs: number;
  maxAttempts: number;
  maxWebhooksPerAccount: number;
  retryBaseMs: number;
  retryFactor: number;
  maxPayloadBytes: number;
  allowedCidrs: string;
  egressIps: string;
  egressProxy: string;
  dnsServers: string;
  retentionDays: number;
  workerConcurrency: number;
  workerPayloadMemory: number;
  endpointConcurrency: number;
  pollIntervalMs: number;
  dbPoolSize: number;
  pgPreparedStatements: boolean;
  sqliteSynchronous: 'full' | 'normal';
  logLevel: string;
  apiRateLimit: number;
}

export const SETTINGS: readonly Setting[] = [
  { env: 'HERALD_DATABASE_URL', key: 'databaseUrl', type: 'string', accepts: '`sqlite:PATH` or `postgres://…`', default: 'sqlite:./data/herald.db', description: '`sqlite:PATH` (embedded) or `postgres://…` (scale-out)' },
  { env: 'HERALD_HOST', key: 'host', type: 'string', accepts: 'IP address or host name', default: '127.0.0.1', description: 'listen address' },
  { env: 'HERALD_PORT', key: 'port', type: 'int', default: '8080', min: 0, max: 65535, description: 'listen port (0 picks a free one)' },
  { env: 'HERALD_ROLE', key: 'role', type: 'enum', values: ['api', 'worker', 'all'], default: 'all', description: '`api` serves HTTP only, `worker` delivers (with /healthz and /metrics on the port), `all` does both' },
  { env: 'HERALD_PUBLIC_URL', key: 'publicUrl', type: 'url', default: '', description: 'the URL users reach Herald at, for dashboard links; default `http://HOST:PORT`. Its host is refused as a webhook target (no loops)' },
  { env: 'HERALD_DATA_DIR', key: 'dataDir', type: 'string', accepts: 'directory path', default: '', description: 'where the generated admin token and secret key are kept; default: the SQLite file\'s folder, else `./data`' },
  { env: 'HERALD_ADMIN_TOKEN', key: 'adminToken', type: 'string', accepts: 'text, at least 16 characters', default: '', secret: true, description: 'operator credential; generated on first start, printed once, stored (hashed) in the data dir' },
  { env: 'HERALD_SECRET_KEY', key: 'secretKey', type: 'string', accepts: '64 hex characters or base64 (32 bytes)', default: '', secret: true, description: '32-byte key (64 hex chars or base64) that encrypts webhook secrets and header values at rest; generated on first start with SQLite' },
  { env: 'HERALD_DEV', key: 'dev', type: 'bool', default: 'false', description: 'allows `http://` and loopback/private targets, for local development only; logs a warning' },
  { env: 'HERALD_DELIVERY_TIMEOUT_MS', key: 'deliveryTimeoutMs', type: 'int', default: '10000', min: 100, max: 120000, description: 'whole-attempt timeout: connect, headers and body' },
  { env: 'HERALD_MAX_ATTEMPTS', key: 'maxAttempts', type: 'int', default: '5', min: 1, max: 50, description: 'attempts per delivery, the first included' },
  { env: 'HERALD_RETRY_BASE_MS', key: 'retryBaseMs', type: 'int', default: '60000', min: 1, max: 86400000, description: 'first retry delay' },
  { env: 'HERALD_RETRY_FACTOR', key: 'retryFactor', type: 'number', default: '10', min: 1, max: 100, description: 'each next retry delay is this many times the previous one (±20 % jitter)' },
  { env: 'HERALD_MAX_WEBHOOKS_PER_ACCOUNT', key: 'maxWebhooksPerAccount', type: 'int', default: '100', min: 1, max: 100000, description: 'webhooks one account may have (each event is one delivery per matching webhook); one more is `422 validation_failed`' },
  { env: 'HERALD_MAX_PAYLOAD_BYTES', key: 'maxPayloadBytes', type: 'int', default: '5242880', min: 1024, max: 104857600, description: 'largest delivered body (5 MB)' },
  { env: 'HERALD_ALLOWED_CIDRS', key: 'allowedCidrs', type: 'cidrs', default: '', description: 'private ranges deliveries may reach anyway (on-premises receivers), matched on the canonical address' },
  { env: 'HERALD_EGRESS_IPS', key: 'egressIps', type: 'cidrs', default: '', description: 'CIDRs shown to users for allow-listing (`/v1/meta`, dashboard)' },
  { env: 'HERALD_EGRESS_PROXY', key: 'egressProxy', type: 'url', default: '', description: 'HTTP CONNECT proxy every delivery and Test Connection goes through (fixed egress IPs)' },
  { env: 'HERALD_DNS_SERVERS', key: 'dnsServers', type: 'string', accepts: 'IP addresses, each with an optional port (`1.1.1.1`, `10.0.0.2:5353`, `[2606:4700::1111]:53`), comma- or space-separated', default: '', description: 'the DNS servers webhook host names are asked of; empty: the system\'s (`/etc/resolv.conf`, then the hosts file for `localhost`, single-label names and names DNS does not know). When set, only these servers are asked: the hosts file and search domains never are. Behind `HERALD_EGRESS_PROXY`, the proxy resolves names again with its own resolver' },
  { env: 'HERALD_RETENTION_DAYS', key: 'retentionDays', type: 'int', default: '30', min: 1, max: 3650, description: 'deliveries, attempt logs and audit log entries older than this are purged' },
  { env: 'HERALD_WORKER_CONCURRENCY', key: 'workerConcurrency', type: 'int', default: '128', min: 1, max: 10000, description: 'deliveries in flight per worker process' },
  { env: 'HERALD_WORKER_PAYLOAD_MEMORY', key: 'workerPayloadMemory', type: 'int', default: '268435456', min: 1048576, max: 68719476736, description: 'event payload bytes a worker process may hold in the deliveries it is sending or has leased ahead (256 MiB); past it, it claims nothing more until some end, and one delivery always goes. Sending one holds about three times its payload' },
  { env: 'HERALD_ENDPOINT_CONCURRENCY', key: 'endpointConcurrency', type: 'int', default: '16', min: 1, max: 1000, description: 'deliveries in flight per webhook, across all worker processes' },
  { env: 'HERALD_API_RATE_LIMIT', key: 'apiRateLimit', type: 'int', default: '0', min: 0, max: 1000000, description: 'API requests a second per API key (and per account for its dashboard sessions) in each process, past which a request is `429 rate_limited` with `Retry-After`; the admin token is never limited; 0: no limit' },
  { env: 'HERALD_POLL_INTERVAL_MS', key: 'pollIntervalMs', type: 'int', default: '200', min: 5, max: 60000, description: 'how often an idle worker looks for due deliveries (new events wake it at once)' },
  { env: 'HERALD_DB_POOL_SIZE', key: 'dbPoolSize', type: 'int', default: '10', min: 1, max: 1000, description: 'PostgreSQL connections per process' },
  { env: 'HERALD_PG_PREPARED_STATEMENTS', key: 'pgPreparedStatements', type: 'bool', default: 'true', description: 'PostgreSQL: run the hot statements as named prepared statements (parsed and planned once per connection); set `false` behind a transaction-mode pooler without prepared-statement support' },
  { env: 'HERALD_SQLITE_SYNCHRONOUS', key: 'sqliteSynchronous', type: 'enum', values: ['full', 'normal'], default: 'full', description: '`full`: a 202 means the event is on disk even after power loss; `normal`: survives a crash of the process, not of the machine' },
  { env: 'HERALD_LOG_LEVEL', key: 'logLevel', type: 'enum', values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info', description: 'log level (JSON logs on stdout)' },
];
