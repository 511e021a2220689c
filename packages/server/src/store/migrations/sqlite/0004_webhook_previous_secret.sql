-- Secret rotation: the secret a rotation replaced keeps signing deliveries (a second entry in
-- webhook-signature) until previous_secret_until, so receivers can switch without a gap.
ALTER TABLE webhooks ADD COLUMN previous_secret_enc TEXT;
ALTER TABLE webhooks ADD COLUMN previous_secret_until INTEGER;
