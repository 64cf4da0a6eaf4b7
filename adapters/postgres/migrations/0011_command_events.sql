-- The event each keyed command landed as (projection "commands", projections/commands.py):
-- a refused retry finds its first attempt by one lookup here and the events after the
-- projection's checkpoint, not by reading the aggregate's whole history. A command that landed
-- twice on one aggregate (retried past the duplicate window) has a row per landing: the first answers.
CREATE TABLE IF NOT EXISTS command_events (
    command_id     text   NOT NULL,
    aggregate_id   text   NOT NULL,
    aggregate_type text   NOT NULL,
    position       bigint NOT NULL,
    PRIMARY KEY (command_id, aggregate_id, position)
);
