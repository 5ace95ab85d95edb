-- Exactly-once replies (issue 18): an outbox message whose last attempt may have reached
-- the transport unrecorded (its sender died holding it, or no answer came back) is in
-- doubt; the courier looks for the posted message before posting again.

ALTER TABLE outbox ADD COLUMN doubt INTEGER NOT NULL DEFAULT 0;
