-- Agents and grants (SPEC.md §11): agents are identified by the SHA-256 of their token; rows
-- carry a MAC under the row-integrity subkey (§6.5). Removing an agent or a credential removes
-- its grants.
CREATE TABLE agents (
    id               TEXT PRIMARY KEY NOT NULL,
    name             TEXT NOT NULL UNIQUE,
    token_digest     BLOB NOT NULL UNIQUE,
    rate_limit       TEXT,
    created_at       INTEGER NOT NULL,
    token_created_at INTEGER NOT NULL,
    mac              BLOB NOT NULL
);

CREATE TABLE grants (
    agent_id      TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    credential_id TEXT NOT NULL REFERENCES credentials (id) ON DELETE CASCADE,
    created_at    INTEGER NOT NULL,
    mac           BLOB NOT NULL,
    PRIMARY KEY (agent_id, credential_id)
);

CREATE INDEX grants_by_credential ON grants (credential_id);
