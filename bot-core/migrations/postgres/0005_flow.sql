-- Deploys waiting in line for their environment (issue 9, deploy queue). `seq` orders
-- the line; an item put back keeps its old `seq`. Times are Unix milliseconds.

CREATE TABLE deploy_queue (
    seq        BIGSERIAL PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    env        TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    invocation TEXT NOT NULL,
    channel    TEXT,
    since_ms   BIGINT NOT NULL
);
CREATE INDEX deploy_queue_env ON deploy_queue (env, seq);
