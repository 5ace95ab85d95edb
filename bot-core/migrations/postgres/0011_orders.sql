-- Canary deploys steered from chat (issue 20): an order (pause, continue, promote,
-- abort) left for a running run by whoever clicked or typed it, read by the run's
-- driver on whichever replica holds it, in the order given.

CREATE TABLE run_orders (
    seq     BIGSERIAL PRIMARY KEY,
    run_id  TEXT NOT NULL,
    orders  TEXT NOT NULL,
    user_id TEXT NOT NULL,
    at_ms   BIGINT NOT NULL
);
CREATE INDEX run_orders_run ON run_orders (run_id, seq);
