-- Buckets (projection "buckets"); a deleted bucket has no row.
CREATE TABLE IF NOT EXISTS buckets (
    id          text        PRIMARY KEY,
    owner_id    text        NOT NULL,
    name        text        NOT NULL,
    type        text        NOT NULL,
    parent_id   text,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    version     integer     NOT NULL,
    position    bigint      NOT NULL
);
-- Children of a parent (parent_id NULL: an owner's roots), oldest first.
CREATE INDEX IF NOT EXISTS buckets_owner_parent ON buckets (owner_id, parent_id, created_at, id);
CREATE INDEX IF NOT EXISTS buckets_parent ON buckets (parent_id) WHERE parent_id IS NOT NULL;
