-- One vault database (vaults/<name>/vault.db): vault metadata, generation counter, credentials.
CREATE TABLE vault_meta (
    singleton        INTEGER PRIMARY KEY NOT NULL CHECK (singleton = 1),
    id               TEXT NOT NULL,
    name             TEXT NOT NULL,
    salt             BLOB NOT NULL,
    kdf_memory_kib   INTEGER NOT NULL,
    kdf_iterations   INTEGER NOT NULL,
    kdf_parallelism  INTEGER NOT NULL,
    key_check        BLOB NOT NULL,
    sealed           INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL
);

CREATE TABLE generation (
    singleton INTEGER PRIMARY KEY NOT NULL CHECK (singleton = 1),
    value     INTEGER NOT NULL
);

CREATE TABLE credentials (
    id              TEXT PRIMARY KEY NOT NULL,
    name            TEXT NOT NULL UNIQUE,
    service         TEXT NOT NULL,
    domains         TEXT NOT NULL,
    auth_type       TEXT NOT NULL,
    header_name     TEXT,
    query_param     TEXT,
    scopes          TEXT NOT NULL,
    expires_at      INTEGER,
    rate_limit      TEXT,
    body_inspection TEXT NOT NULL,
    allow_http      INTEGER NOT NULL,
    pass_cookies    INTEGER NOT NULL,
    secret          BLOB NOT NULL,
    previous_secret BLOB,
    previous_until  INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    rotated_at      INTEGER,
    mac             BLOB NOT NULL
);

CREATE INDEX credentials_by_service ON credentials (service);
