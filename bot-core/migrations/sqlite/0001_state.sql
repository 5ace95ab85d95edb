-- Crossroads state, SQLite: the inbox, the outbox, button sets, locks, runs and the
-- hash-chained audit log. Times are Unix milliseconds; JSON is stored as text.

CREATE TABLE inbox (
    key            TEXT PRIMARY KEY,
    transport      TEXT NOT NULL,
    payload        TEXT NOT NULL,
    received_ms    INTEGER NOT NULL,
    owner          TEXT NOT NULL,
    lease_until_ms INTEGER NOT NULL,
    done           INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX inbox_waiting ON inbox (received_ms) WHERE done = 0;
CREATE INDEX inbox_done ON inbox (received_ms) WHERE done = 1;

CREATE TABLE outbox (
    n              INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    transport      TEXT NOT NULL,
    route          TEXT NOT NULL,
    about          TEXT NOT NULL,
    body           TEXT NOT NULL DEFAULT 'null',
    version        INTEGER NOT NULL DEFAULT 0,
    last           INTEGER NOT NULL DEFAULT 0,
    delivered      INTEGER NOT NULL DEFAULT 0,
    state          TEXT NOT NULL DEFAULT 'null',
    attempts       INTEGER NOT NULL DEFAULT 0,
    next_at_ms     INTEGER NOT NULL,
    given_up       INTEGER NOT NULL DEFAULT 0,
    owner          TEXT NOT NULL DEFAULT '',
    lease_until_ms INTEGER NOT NULL DEFAULT 0,
    changed_ms     INTEGER NOT NULL
);
CREATE INDEX outbox_pending ON outbox (transport, n) WHERE version > delivered AND given_up = 0;

CREATE TABLE button_sets (
    id         TEXT PRIMARY KEY,
    actions    TEXT NOT NULL,
    channel    TEXT,
    issued_to  TEXT NOT NULL,
    expires_ms INTEGER NOT NULL,
    used_by    TEXT
);
CREATE INDEX button_sets_expiry ON button_sets (expires_ms);

CREATE TABLE locks (
    env        TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    reason     TEXT NOT NULL,
    since_ms   INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    action     TEXT,
    run        TEXT
);

CREATE TABLE runs (
    n              INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    action         TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    env            TEXT,
    invocation     TEXT NOT NULL,
    message        TEXT,
    state          TEXT NOT NULL,
    status         TEXT NOT NULL,
    fence          INTEGER NOT NULL,
    owner          TEXT NOT NULL,
    lease_until_ms INTEGER NOT NULL,
    started_ms     INTEGER NOT NULL
);
CREATE INDEX runs_running ON runs (lease_until_ms) WHERE status = 'running';
CREATE INDEX runs_env ON runs (env, n);

CREATE TABLE audit (
    seq         INTEGER PRIMARY KEY,
    at_ms       INTEGER NOT NULL,
    user_id     TEXT NOT NULL,
    command     TEXT NOT NULL,
    target      TEXT NOT NULL,
    env         TEXT,
    args        TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    duration_ms INTEGER,
    links       TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX audit_env ON audit (env, seq);
