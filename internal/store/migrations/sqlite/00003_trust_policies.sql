-- +goose Up
-- Tokenless CI (issue 9): trust policies, and the link from a token an OIDC
-- exchange minted to its policy. trust_policy_id is not a foreign key: a
-- deleted policy's tokens (revoked with it) keep naming it for the record.
-- oidc_identity is the JSON summary of the CI identity ('' for other tokens).
CREATE TABLE trust_policies (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id           INTEGER NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name             TEXT    NOT NULL,
    issuer           TEXT    NOT NULL,
    audience         TEXT    NOT NULL,
    conditions       TEXT    NOT NULL,
    all_projects     INTEGER NOT NULL,
    projects         TEXT    NOT NULL DEFAULT '[]',
    patterns         TEXT    NOT NULL DEFAULT '[]',
    permissions      INTEGER NOT NULL,
    ttl_seconds      INTEGER NOT NULL,
    created_by_id    INTEGER,
    created_by_login TEXT    NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE UNIQUE INDEX trust_policies_org_name ON trust_policies (org_id, name);
CREATE INDEX trust_policies_org_issuer ON trust_policies (org_id, issuer, id);

ALTER TABLE tokens ADD COLUMN trust_policy_id INTEGER;
ALTER TABLE tokens ADD COLUMN oidc_identity TEXT NOT NULL DEFAULT '';
CREATE INDEX tokens_trust_policy ON tokens (trust_policy_id) WHERE trust_policy_id IS NOT NULL;

-- +goose Down
DROP INDEX tokens_trust_policy;
ALTER TABLE tokens DROP COLUMN oidc_identity;
ALTER TABLE tokens DROP COLUMN trust_policy_id;
DROP TABLE trust_policies;
