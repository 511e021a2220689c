-- Per-webhook heads of the two claim lanes. A claim asks "the oldest due deliveries of this
-- webhook" by index instead of walking the global due order past a webhook that is already at
-- its concurrency limit (a stalled endpoint's backlog made every claim read all of it).
CREATE INDEX deliveries_webhook_due_first ON deliveries(webhook_id, next_attempt_at) WHERE status = 'pending' AND attempts = 0;
CREATE INDEX deliveries_webhook_due_retry ON deliveries(webhook_id, next_attempt_at) WHERE status = 'pending' AND attempts > 0;
