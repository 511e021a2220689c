-- Herald schema v1 (PostgreSQL). Kept in lockstep with sqlite/0001_init.sql: same tables,
-- columns and indexes; only types differ. Times are integer epoch milliseconds.

CREATE TABLE accounts (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  plan TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  prefix TEXT NOT NULL,
  key_hash TEXT NOT NULL UNIQUE,
  created_at BIGINT NOT NULL
);
CREATE INDEX api_keys_account ON api_keys(account_id);

CREATE TABLE event_types (
  name TEXT PRIMARY KEY,
  description TEXT NOT NULL,
  schema TEXT,
  builtin INTEGER NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL
);

CREATE TABLE webhooks (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  url TEXT NOT NULL,
  description TEXT NOT NULL,
  events TEXT NOT NULL,
  headers_enc TEXT,
  secret_enc TEXT,
  enabled INTEGER NOT NULL,
  disabled_reason TEXT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX webhooks_account ON webhooks(account_id, id);

CREATE TABLE events (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  type TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  data TEXT NOT NULL,
  idempotency_key TEXT
);
CREATE UNIQUE INDEX events_idempotency ON events(account_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX events_created ON events(created_at);

CREATE TABLE deliveries (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL,
  event_id TEXT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
  webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
  event_type TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  next_attempt_at BIGINT,
  lease_until BIGINT,
  lease_owner TEXT,
  last_attempt_at BIGINT,
  last_status_code INTEGER,
  last_error TEXT,
  last_duration_ms INTEGER,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
-- The two claim lanes: first attempts never queue behind a backlog of retries.
CREATE INDEX deliveries_due_first ON deliveries(next_attempt_at) WHERE status = 'pending' AND attempts = 0;
CREATE INDEX deliveries_due_retry ON deliveries(next_attempt_at) WHERE status = 'pending' AND attempts > 0;
-- In-flight deliveries per webhook (per-endpoint concurrency across processes).
CREATE INDEX deliveries_leased ON deliveries(lease_until, webhook_id) WHERE lease_until IS NOT NULL;
CREATE INDEX deliveries_account ON deliveries(account_id, id);
CREATE INDEX deliveries_webhook ON deliveries(webhook_id, id);
CREATE INDEX deliveries_event ON deliveries(event_id);
CREATE INDEX deliveries_created ON deliveries(created_at);

CREATE TABLE attempts (
  id TEXT PRIMARY KEY,
  delivery_id TEXT NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
  attempt_no INTEGER NOT NULL,
  started_at BIGINT NOT NULL,
  duration_ms INTEGER NOT NULL,
  status_code INTEGER,
  success INTEGER NOT NULL,
  error_kind TEXT,
  error_message TEXT,
  request_headers TEXT NOT NULL,
  response_headers TEXT,
  response_body TEXT,
  response_truncated INTEGER NOT NULL
);
CREATE INDEX attempts_delivery ON attempts(delivery_id, attempt_no);

-- One-time dashboard sign-in links and the cookie sessions they open.
CREATE TABLE portal_links (
  token_hash TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  expires_at BIGINT NOT NULL,
  used_at BIGINT
);

CREATE TABLE sessions (
  token_hash TEXT PRIMARY KEY,
  account_id TEXT REFERENCES accounts(id) ON DELETE CASCADE,
  csrf_token TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL
);

-- Background jobs that must run once per cluster (retention purge): whoever moves
-- next_run_at forward runs it.
CREATE TABLE cluster_jobs (
  name TEXT PRIMARY KEY,
  next_run_at BIGINT NOT NULL,
  owner TEXT
);

INSERT INTO event_types (name, description, schema, builtin, created_at) VALUES
  ('content.generated', 'A piece of content finished generating.', NULL, 1, 0),
  ('analysis.completed', 'An analysis run completed and its results are ready.', NULL, 1, 0),
  ('publishing.failed', 'Publishing to a destination failed.', NULL, 1, 0),
  ('ping', 'Sent by Test Connection only, to check that a webhook answers.', NULL, 1, 0);
