-- What each processor's config, each migration run's lists, each job's errors, each book's
-- metadata and each chapter's summary weigh as JSON text (projections/sizes.py, projections/books.py),
-- so pages of processors, runs, jobs and books stop at PAGE_BYTES without reading the
-- rows past it, as blobs and schema versions do (0009).
-- Nullable: a projector of the previous version, still running during an upgrade, writes rows
-- without them; the queries weigh such a row by its columns' text, in the database.
ALTER TABLE processors ADD COLUMN IF NOT EXISTS config_bytes bigint;
UPDATE processors
SET config_bytes = octet_length(config::text) + octet_length(triggers::text) + octet_length(limits::text)
WHERE config_bytes IS NULL;

ALTER TABLE migrations ADD COLUMN IF NOT EXISTS errors_bytes bigint;
ALTER TABLE migrations ADD COLUMN IF NOT EXISTS revert_skipped_bytes bigint;
UPDATE migrations SET errors_bytes = octet_length(errors::text) WHERE errors_bytes IS NULL;
UPDATE migrations SET revert_skipped_bytes = octet_length(revert_skipped_blob_ids::text)
WHERE revert_skipped_bytes IS NULL;

ALTER TABLE jobs ADD COLUMN IF NOT EXISTS error_bytes bigint;
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS last_error_bytes bigint;
UPDATE jobs SET error_bytes = COALESCE(octet_length(error::text), 4) WHERE error_bytes IS NULL;
UPDATE jobs SET last_error_bytes = COALESCE(octet_length(last_error::text), 4) WHERE last_error_bytes IS NULL;

ALTER TABLE books ADD COLUMN IF NOT EXISTS metadata_bytes bigint;
UPDATE books SET metadata_bytes = octet_length(metadata::text) WHERE metadata_bytes IS NULL;
ALTER TABLE book_chapters ADD COLUMN IF NOT EXISTS summary_bytes bigint;
UPDATE book_chapters SET summary_bytes = octet_length(jsonb_build_object('id', id, 'title', title, 'order', 10000)::text) + 1
WHERE summary_bytes IS NULL;
