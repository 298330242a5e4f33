-- otpfleet schema version 2: the audit log. Every change inserts its event in the statement
-- that makes it (so a change and its entry commit together), and the chainer links them.
--
-- `seq` is handed out at insert but a row becomes visible at commit, so rows appear out of
-- `seq` order: a reader that tails `seq > last` would skip a transaction that commits late.
-- The chainer does not tail: it links, in `seq` order, the rows of transactions older than
-- the oldest one still running (`xid < pg_snapshot_xmin(pg_current_snapshot())`), which are
-- all visible and to which nothing can be added any more; a late commit is linked when its
-- transaction is finished. The chain's order is `chain_pos`.
CREATE TABLE events (
    seq bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
    xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    at_ms bigint NOT NULL,
    -- The event as the embedded journal records it (`domain::Event`, JSON).
    body jsonb NOT NULL,
    -- Set by the chainer: the entry's place in the chain (1, 2, …) and its link, SHA-256 over
    -- the previous link, the place, the time and the body's text (`journal::link`).
    chain_pos bigint UNIQUE,
    link bytea,
    CHECK ((chain_pos IS NULL) = (link IS NULL))
);

CREATE INDEX events_unchained ON events (seq) WHERE chain_pos IS NULL;
