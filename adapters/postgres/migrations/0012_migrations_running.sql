-- The job runners count each user's running migration runs every half second while that user has
-- work queued (projections/read_model.py, running_job_ids): only the running ones, by owner.
CREATE INDEX IF NOT EXISTS migrations_owner_running ON migrations (owner_id) WHERE status = 'running';
