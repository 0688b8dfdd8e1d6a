-- The registry database (aegis.db): the list of vaults of this data directory.
CREATE TABLE vaults (
    id         TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
