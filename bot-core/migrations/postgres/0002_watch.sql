-- Crossroads monitor, PostgreSQL: every probe result (kept for the retention period) and
-- each target's confirmed state with its open incident. Times are Unix milliseconds.

CREATE TABLE probes (
    n          BIGSERIAL PRIMARY KEY,
    target     TEXT NOT NULL,
    at_ms      BIGINT NOT NULL,
    health     TEXT NOT NULL,
    latency_ms BIGINT,
    status     BIGINT,
    version    TEXT,
    reason     TEXT
);
CREATE INDEX probes_target ON probes (target, at_ms);
CREATE INDEX probes_at ON probes (at_ms);

CREATE TABLE watches (
    target   TEXT PRIMARY KEY,
    health   TEXT NOT NULL,
    since_ms BIGINT NOT NULL,
    reason   TEXT,
    incident TEXT
);
