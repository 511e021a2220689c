-- A webhook's delivery rate limit: at most rate_limit requests a second to its URL, over every
-- process of the cluster. A token bucket kept with the webhook: rate_credit is what was left
-- of it, in thousandths of a delivery, at rate_at (epoch ms); NULL for a full bucket. Claims
-- spend it under the same lock that keeps them within the webhook's concurrency limit.
ALTER TABLE webhooks ADD COLUMN rate_limit INTEGER;
ALTER TABLE webhooks ADD COLUMN rate_credit BIGINT;
ALTER TABLE webhooks ADD COLUMN rate_at BIGINT;
CREATE INDEX webhooks_rate_limited ON webhooks(id) WHERE rate_limit IS NOT NULL;
