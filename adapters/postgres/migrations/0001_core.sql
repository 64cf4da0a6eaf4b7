-- Projection checkpoints: one row per projection; moved in the same
-- transaction as the read-model changes it covers.
CREATE TABLE IF NOT EXISTS projection_checkpoints (
    name           text PRIMARY KEY,
    position       bigint      NOT NULL DEFAULT 0,
    status         text        NOT NULL DEFAULT 'running',   -- running | halted
    error          text,
    error_position bigint,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
