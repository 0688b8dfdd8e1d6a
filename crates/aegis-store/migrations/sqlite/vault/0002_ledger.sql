-- The vault's audit ledger (SPEC.md 15): hash-chained entries, the chain head, signed
-- checkpoints, and the vault's ledger signing key (public key in clear, seed wrapped).
CREATE TABLE ledger (
    id          INTEGER PRIMARY KEY NOT NULL,
    ts          INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    outcome     TEXT,
    event       TEXT,
    request_id  TEXT,
    via         TEXT NOT NULL,
    instance    TEXT NOT NULL,
    actor       TEXT,
    agent       TEXT,
    credential  TEXT,
    service     TEXT,
    method      TEXT,
    target_host TEXT,
    path        TEXT,
    status_code INTEGER,
    denial_code TEXT,
    latency_ms  INTEGER,
    bytes_in    INTEGER,
    bytes_out   INTEGER,
    detail      TEXT NOT NULL,
    prev_hash   BLOB NOT NULL,
    hash        BLOB NOT NULL
);

CREATE INDEX ledger_by_request ON ledger (request_id);

CREATE TABLE ledger_head (
    singleton INTEGER PRIMARY KEY NOT NULL CHECK (singleton = 1),
    last_id   INTEGER NOT NULL,
    last_hash BLOB NOT NULL,
    last_ts   INTEGER NOT NULL
);

CREATE TABLE ledger_checkpoints (
    entry_id  INTEGER PRIMARY KEY NOT NULL,
    hash      BLOB NOT NULL,
    ts        INTEGER NOT NULL,
    signature BLOB NOT NULL
);

ALTER TABLE vault_meta ADD COLUMN ledger_public_key BLOB;
ALTER TABLE vault_meta ADD COLUMN ledger_key_envelope BLOB;
