-- Migration runs (projection "migrations"), listed newest first per owner;
-- a completed real run from one version to another is looked up by owner.
CREATE TABLE IF NOT EXISTS migrations (
    id                       text        PRIMARY KEY,
    owner_id                 text        NOT NULL,
    schema_id                text        NOT NULL,
    from_schema_id           text        NOT NULL,
    bucket_id                text,
    dry_run                  boolean     NOT NULL,
    status                   text        NOT NULL,
    total                    integer     NOT NULL,
    migrated                 integer     NOT NULL,
    failed                   integer     NOT NULL,
    skipped                  integer     NOT NULL,
    errors                   jsonb       NOT NULL,
    error                    text,
    reverted                 integer     NOT NULL,
    revert_skipped           integer     NOT NULL,
    revert_skipped_blob_ids  jsonb       NOT NULL,
    created_at               timestamptz NOT NULL,
    started_at               timestamptz,
    finished_at              timestamptz,
    reverted_at              timestamptz,
    updated_at               timestamptz NOT NULL,
    version                  integer     NOT NULL,
    position                 bigint      NOT NULL
);
CREATE INDEX IF NOT EXISTS migrations_owner_created ON migrations (owner_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS migrations_owner_versions ON migrations (owner_id, from_schema_id, schema_id);
