-- A cheap monitor (issue 19): the probe log keeps a target's changes and one point per
-- sampling period; each row says how many probes it stands for (1 for rows written
-- before, which stood for themselves).

ALTER TABLE probes ADD COLUMN probe_count BIGINT NOT NULL DEFAULT 1;
