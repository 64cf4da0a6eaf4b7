-- Blobs (projection "blobs"); a deleted blob has no rows.
CREATE TABLE IF NOT EXISTS blobs (
    id           text        PRIMARY KEY,
    owner_id     text        NOT NULL,
    schema_id    text,
    processor_id text,
    data         jsonb,
    bucket_ids   jsonb       NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    version      integer     NOT NULL,
    position     bigint      NOT NULL
);
CREATE INDEX IF NOT EXISTS blobs_owner_created ON blobs (owner_id, created_at, id);
CREATE INDEX IF NOT EXISTS blobs_owner_schema_created ON blobs (owner_id, schema_id, created_at, id);

-- One row per (blob, bucket) membership, for listing a bucket's blobs.
CREATE TABLE IF NOT EXISTS blob_buckets (
    blob_id     text        NOT NULL,
    bucket_id   text        NOT NULL,
    created_at  timestamptz NOT NULL,   -- when the blob entered the bucket
    version     integer     NOT NULL,
    position    bigint      NOT NULL,
    PRIMARY KEY (blob_id, bucket_id)
);
CREATE INDEX IF NOT EXISTS blob_buckets_bucket ON blob_buckets (bucket_id, blob_id);
