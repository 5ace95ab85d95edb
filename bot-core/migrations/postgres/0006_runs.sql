-- One typed run lifecycle (issue 16): the lock row names the run holding it and that
-- run's fencing token, so "the lock is mine" and "the run is mine" are one fact; runs
-- recorded before they start (an approved request, the head of the deploy queue) wait
-- as 'pending' until whichever replica is alive starts them.

ALTER TABLE locks ADD COLUMN fence BIGINT NOT NULL DEFAULT 0;
CREATE INDEX locks_run ON locks (run);
CREATE INDEX runs_pending ON runs (lease_until_ms) WHERE status = 'pending';
