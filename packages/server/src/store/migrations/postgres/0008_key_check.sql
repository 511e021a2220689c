-- Facts about the database itself, as name/value pairs. `secret_key_check` holds a known text
-- sealed with the secret key that seals webhook secrets and header values: a process started
-- with another key cannot open it, and refuses to start instead of failing every delivery.
CREATE TABLE herald_meta (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
