-- What each blob's data and each schema version weigh as JSON text (projections/sizes.py), so
-- a list page stops at PAGE_BYTES without reading the data of the rows past it.
-- Nullable: a projector of the previous version, still running during an upgrade, writes rows
-- without it; the queries weigh such a row by its data (octet_length(data::text)), in the database.
ALTER TABLE blobs ADD COLUMN IF NOT EXISTS data_bytes bigint;
UPDATE blobs SET data_bytes = COALESCE(octet_length(data::text), 4) WHERE data_bytes IS NULL;

ALTER TABLE schemas ADD COLUMN IF NOT EXISTS schema_bytes bigint;
UPDATE schemas SET schema_bytes = octet_length(schema::text) + COALESCE(octet_length(migration::text), 4)
WHERE schema_bytes IS NULL;
