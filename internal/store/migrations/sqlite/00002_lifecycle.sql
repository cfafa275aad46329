-- +goose Up
-- Token lifecycle (issue 6): rotation schedules, expiry and idle warnings,
-- and the webhook outbox.
-- expiry_warned is a bit set of the events already emitted: 1, 2 and 4
-- for token.expiring at 30, 7 and 1 days, 8 for token.expired.
-- idle_warned_for is the start of the idle period token.idle was sent for
-- (the last use, or the creation), so a token is warned once per period.
ALTER TABLE tokens ADD COLUMN rotation_every INTEGER;
ALTER TABLE tokens ADD COLUMN rotation_grace INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN next_rotation_at INTEGER;
ALTER TABLE tokens ADD COLUMN rotated_at INTEGER;
ALTER TABLE tokens ADD COLUMN previous_secret_expires_at INTEGER;
ALTER TABLE tokens ADD COLUMN expiry_warned INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN idle_warned_for INTEGER;
CREATE INDEX tokens_next_rotation ON tokens (next_rotation_at) WHERE next_rotation_at IS NOT NULL;
CREATE INDEX tokens_expires ON tokens (expires_at) WHERE expires_at IS NOT NULL AND revoked_at IS NULL;
-- Tokens that expired before this migration are not announced afterwards.
UPDATE tokens SET expiry_warned = 15 WHERE expires_at <= CAST(strftime('%s', 'now') AS INTEGER);

-- The signing secret is kept as given: signing needs it.
CREATE TABLE webhooks (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id           INTEGER NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    url              TEXT    NOT NULL,
    events           TEXT    NOT NULL,
    secret           TEXT    NOT NULL,
    created_by_id    INTEGER,
    created_by_login TEXT    NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX webhooks_org ON webhooks (org_id, id);

-- The outbox: a delivery is written in the transaction of the change it
-- reports. A replica leases it (lease_owner, lease_until) while sending.
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id      INTEGER NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event           TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    next_attempt_at INTEGER,
    lease_owner     TEXT    NOT NULL DEFAULT '',
    lease_until     INTEGER NOT NULL DEFAULT 0,
    attempts        INTEGER NOT NULL DEFAULT 0,
    delivered_at    INTEGER
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, id);

CREATE TABLE webhook_attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id INTEGER NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,
    status_code INTEGER NOT NULL,
    error       TEXT    NOT NULL,
    duration_ms INTEGER NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id);

-- +goose Down
DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhooks;
DROP INDEX tokens_expires;
DROP INDEX tokens_next_rotation;
ALTER TABLE tokens DROP COLUMN idle_warned_for;
ALTER TABLE tokens DROP COLUMN expiry_warned;
ALTER TABLE tokens DROP COLUMN previous_secret_expires_at;
ALTER TABLE tokens DROP COLUMN rotated_at;
ALTER TABLE tokens DROP COLUMN next_rotation_at;
ALTER TABLE tokens DROP COLUMN rotation_grace;
ALTER TABLE tokens DROP COLUMN rotation_every;
