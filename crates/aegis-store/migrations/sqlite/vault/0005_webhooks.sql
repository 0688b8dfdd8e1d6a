-- Webhooks (SPEC.md §18): stored webhooks (secret encrypted with the webhook-secrets subkey,
-- row MAC under the row-integrity subkey), the delivery outbox written in the same transaction
-- as the ledger batch that raised its events, which credential-expiry stages were notified, and
-- the secrets generated for config-file webhooks written without one (§27).
CREATE TABLE webhooks (
    id         TEXT PRIMARY KEY NOT NULL,
    url        TEXT NOT NULL,
    events     TEXT NOT NULL,
    secret     BLOB NOT NULL,
    allow_http INTEGER NOT NULL,
    label      TEXT,
    created_at INTEGER NOT NULL,
    mac        BLOB NOT NULL
);

CREATE TABLE webhook_outbox (
    delivery_id     TEXT PRIMARY KEY NOT NULL,
    event_id        TEXT NOT NULL,
    webhook_id      TEXT NOT NULL,
    event           TEXT NOT NULL,
    payload         BLOB NOT NULL,
    created_at      INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivered', 'failed')),
    last_result     TEXT,
    last_attempt_at INTEGER,
    lease_until     INTEGER,
    leased_by       TEXT
);

CREATE INDEX webhook_outbox_due ON webhook_outbox (state, next_attempt_at);
CREATE INDEX webhook_outbox_by_webhook ON webhook_outbox (webhook_id, last_attempt_at);

CREATE TABLE webhook_expiry_notices (
    credential_id TEXT NOT NULL,
    expires_at    INTEGER NOT NULL,
    stage         TEXT NOT NULL,
    notified_at   INTEGER NOT NULL,
    PRIMARY KEY (credential_id, expires_at, stage)
);

CREATE TABLE webhook_config_secrets (
    url        TEXT PRIMARY KEY NOT NULL,
    secret     BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
