-- Four-eyes approval: requests kept until decided, each decided once across
-- replicas (a vote updates a row only at the version it read). Times are Unix
-- milliseconds; the request itself is JSON text.
CREATE TABLE approvals (
    id         TEXT PRIMARY KEY,
    requester  TEXT NOT NULL,
    status     TEXT NOT NULL,
    expires_ms INTEGER NOT NULL,
    body       TEXT NOT NULL,
    version    INTEGER NOT NULL DEFAULT 0
);
