-- +goose Up
-- Times are Unix seconds (UTC) in INTEGER columns: they round-trip exactly
-- and sort correctly on both databases.
-- AUTOINCREMENT keeps an ID from being reused after a delete, so a stale
-- link to a deleted analysis never opens another one.

CREATE TABLE orgs (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    key                TEXT    NOT NULL UNIQUE,
    name               TEXT    NOT NULL,
    description        TEXT    NOT NULL DEFAULT '',
    plan               TEXT    NOT NULL,
    max_lifetime_days  INTEGER NOT NULL,
    allow_non_expiring INTEGER NOT NULL,
    idle_warning_days  INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    login         TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL DEFAULT '',
    admin         INTEGER NOT NULL,
    password_hash TEXT    NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL
);

CREATE TABLE memberships (
    org_id     INTEGER NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE projects (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id     INTEGER NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    key        TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (org_id, key)
);

CREATE TABLE tokens (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT    NOT NULL,
    org_id           INTEGER REFERENCES orgs (id) ON DELETE CASCADE,
    user_id          INTEGER REFERENCES users (id) ON DELETE CASCADE,
    name             TEXT    NOT NULL,
    description      TEXT    NOT NULL DEFAULT '',
    all_projects     INTEGER NOT NULL,
    patterns         TEXT    NOT NULL DEFAULT '[]',
    permissions      INTEGER NOT NULL,
    allowed_cidrs    TEXT    NOT NULL DEFAULT '[]',
    hint             TEXT    NOT NULL,
    source           TEXT    NOT NULL,
    created_by_id    INTEGER,
    created_by_login TEXT    NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER,
    last_used_at     INTEGER,
    last_used_ip     TEXT    NOT NULL DEFAULT '',
    revoked_at       INTEGER,
    project_count    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX tokens_org ON tokens (org_id, id);
CREATE INDEX tokens_user ON tokens (user_id, id);

CREATE TABLE token_secrets (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    token_id   INTEGER NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    hash       BLOB    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER
);
CREATE INDEX token_secrets_token ON token_secrets (token_id);

CREATE TABLE token_projects (
    token_id   INTEGER NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    PRIMARY KEY (token_id, project_id)
) WITHOUT ROWID;
CREATE INDEX token_projects_project ON token_projects (project_id);

CREATE TABLE audit_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    org_key    TEXT    NOT NULL,
    actor_type TEXT    NOT NULL,
    actor_id   INTEGER NOT NULL,
    actor_name TEXT    NOT NULL,
    actor_ip   TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    target     TEXT    NOT NULL,
    details    TEXT    NOT NULL
);
CREATE INDEX audit_events_org ON audit_events (org_key, id);
CREATE INDEX audit_events_org_action ON audit_events (org_key, action, id);
CREATE INDEX audit_events_org_target ON audit_events (org_key, target, id);

CREATE TABLE analyses (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id   INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    branch       TEXT    NOT NULL,
    commit_sha   TEXT    NOT NULL,
    size         INTEGER NOT NULL,
    sha256       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    actor_type   TEXT    NOT NULL,
    actor_id     INTEGER NOT NULL,
    actor_name   TEXT    NOT NULL,
    actor_ip     TEXT    NOT NULL
);
CREATE INDEX analyses_project ON analyses (project_id, id);

-- Reports live apart from their metadata so that listing analyses never
-- reads a blob.
CREATE TABLE analysis_reports (
    analysis_id INTEGER PRIMARY KEY REFERENCES analyses (id) ON DELETE CASCADE,
    body        BLOB    NOT NULL
);

-- +goose Down
DROP TABLE analysis_reports;
DROP TABLE analyses;
DROP TABLE audit_events;
DROP TABLE token_projects;
DROP TABLE token_secrets;
DROP TABLE tokens;
DROP TABLE projects;
DROP TABLE memberships;
DROP TABLE users;
DROP TABLE orgs;
