-- An operator's session is bound to the admin token it was opened with (an HMAC of that
-- token's hash under the secret key, so the column helps no one guess the token): once Herald
-- runs with a rotated token, sessions opened with the old one are refused. Account sessions
-- (from portal links) keep it NULL.
ALTER TABLE sessions ADD COLUMN admin_tag TEXT;
