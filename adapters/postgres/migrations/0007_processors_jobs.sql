-- Processors (projection "processors"); a deleted processor has no row.
CREATE TABLE IF NOT EXISTS processors (
    id            text        PRIMARY KEY,
    owner_id      text        NOT NULL,
    name          text        NOT NULL,
    type          text        NOT NULL,
    input_schema  text,
    output_schema text,
    config        jsonb       NOT NULL,
    triggers      jsonb       NOT NULL,
    limits        jsonb       NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    version       integer     NOT NULL,
    position      bigint      NOT NULL
);
CREATE INDEX IF NOT EXISTS processors_owner_created ON processors (owner_id, created_at, id);

-- Jobs (projection "jobs"), listed newest first per owner, optionally by
-- processor and/or status.
CREATE TABLE IF NOT EXISTS jobs (
    id                text        PRIMARY KEY,
    owner_id          text        NOT NULL,
    processor_id      text        NOT NULL,
    processor_version integer     NOT NULL,
    processor_type    text        NOT NULL,
    input_blob_id     text        NOT NULL,
    input_version     integer     NOT NULL,
    output_blob_id    text,
    status            text        NOT NULL,
    error             jsonb,
    last_error        jsonb,
    attempts          integer     NOT NULL,
    trigger           jsonb,
    depth             integer     NOT NULL,
    created_at        timestamptz NOT NULL,
    started_at        timestamptz,
    finished_at       timestamptz,
    updated_at        timestamptz NOT NULL,
    version           integer     NOT NULL,
    position          bigint      NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_owner_created ON jobs (owner_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS jobs_owner_processor_created ON jobs (owner_id, processor_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS jobs_processor_status ON jobs (processor_id, status);
CREATE INDEX IF NOT EXISTS jobs_owner_running ON jobs (owner_id) WHERE status = 'running';

-- Checkpoints of log subscribers that are not projections (the trigger
-- dispatcher): the position of the last event they have acted on.
CREATE TABLE IF NOT EXISTS subscriber_checkpoints (
    name       text        PRIMARY KEY,
    position   bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
