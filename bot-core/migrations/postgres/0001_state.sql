-- Crossroads state, PostgreSQL: the inbox, the outbox, button sets, locks, runs and the
-- hash-chained audit log. Times are Unix milliseconds; JSON is stored as text.

CREATE TABLE inbox (
    key            TEXT PRIMARY KEY,
    transport      TEXT NOT NULL,
    payload        TEXT NOT NULL,
    received_ms    BIGINT NOT NULL,
    owner          TEXT NOT NULL,
    lease_until_ms BIGINT NOT NULL,
    done           BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX inbox_waiting ON inbox (received_ms) WHERE done = 0;
CREATE INDEX inbox_done ON inbox (received_ms) WHERE done = 1;

CREATE TABLE outbox (
    n              BIGSERIAL PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    transport      TEXT NOT NULL,
    route          TEXT NOT NULL,
    about          TEXT NOT NULL,
    body           TEXT NOT NULL DEFAULT 'null',
    version        BIGINT NOT NULL DEFAULT 0,
    last           BIGINT NOT NULL DEFAULT 0,
    delivered      BIGINT NOT NULL DEFAULT 0,
    state          TEXT NOT NULL DEFAULT 'null',
    attempts       BIGINT NOT NULL DEFAULT 0,
    next_at_ms     BIGINT NOT NULL,
    given_up       BIGINT NOT NULL DEFAULT 0,
    owner          TEXT NOT NULL DEFAULT '',
    lease_until_ms BIGINT NOT NULL DEFAULT 0,
    changed_ms     BIGINT NOT NULL
);
CREATE INDEX outbox_pending ON outbox (transport, n) WHERE version > delivered AND given_up = 0;

CREATE TABLE button_sets (
    id         TEXT PRIMARY KEY,
    actions    TEXT NOT NULL,
    channel    TEXT,
    issued_to  TEXT NOT NULL,
    expires_ms BIGINT NOT NULL,
    used_by    TEXT
);
CREATE INDEX button_sets_expiry ON button_sets (expires_ms);

CREATE TABLE locks (
    env        TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    reason     TEXT NOT NULL,
    since_ms   BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    action     TEXT,
    run        TEXT
);

CREATE TABLE runs (
    n              BIGSERIAL PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    action         TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    env            TEXT,
    invocation     TEXT NOT NULL,
    message        TEXT,
    state          TEXT NOT NULL,
    status         TEXT NOT NULL,
    fence          BIGINT NOT NULL,
    owner          TEXT NOT NULL,
    lease_until_ms BIGINT NOT NULL,
    started_ms     BIGINT NOT NULL
);
CREATE INDEX runs_running ON runs (lease_until_ms) WHERE status = 'running';
CREATE INDEX runs_env ON runs (env, n);

CREATE TABLE audit (
    seq         BIGINT PRIMARY KEY,
    at_ms       BIGINT NOT NULL,
    user_id     TEXT NOT NULL,
    command     TEXT NOT NULL,
    target      TEXT NOT NULL,
    env         TEXT,
    args        TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    duration_ms BIGINT,
    links       TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX audit_env ON audit (env, seq);
