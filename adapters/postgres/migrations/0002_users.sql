CREATE TABLE IF NOT EXISTS users (
    user_id     text PRIMARY KEY,
    account_id  text        NOT NULL UNIQUE,   -- the aggregate id (hash of the normalised email)
    email       text        NOT NULL,
    username    text        NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    version     integer     NOT NULL,
    position    bigint      NOT NULL
);
