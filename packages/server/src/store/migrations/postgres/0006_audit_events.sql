-- Who changed what in an account, for its customers and its operator to read back: webhooks
-- created, changed, deleted, their secrets revealed or rotated, failed deliveries resent, API
-- keys made and revoked, plan changes, sign-in links. Values of secrets and custom headers are
-- never written here. Kept as long as the delivery history (HERALD_RETENTION_DAYS) and deleted
-- with the account.
CREATE TABLE audit_events (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  at BIGINT NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT,
  details TEXT
);
CREATE INDEX audit_events_account ON audit_events(account_id, id);
