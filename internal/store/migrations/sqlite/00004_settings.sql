-- +goose Up
-- Instance-wide values that every replica must share, such as the key that
-- signs web sessions. Each is written once, by whichever replica needs it
-- first.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

-- +goose Down
DROP TABLE settings;
