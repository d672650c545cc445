-- pgvshift's own state on the TARGET. Everything the tool needs to resume lives here, and the
-- progress row is updated in the same transaction as the data it covers.
CREATE SCHEMA IF NOT EXISTS pgvshift;

-- One row per replication slot (one pgvshift configuration).
CREATE TABLE IF NOT EXISTS pgvshift.progress (
    slot                  text PRIMARY KEY,
    publication           text NOT NULL,
    created_publication   boolean NOT NULL,
    -- 'snapshot': the initial copy has not completed (a new run starts it over);
    -- 'streaming': the copy is complete, changes after applied_lsn are applied from the slot.
    phase                 text NOT NULL CHECK (phase IN ('snapshot', 'streaming')),
    consistent_point      pg_lsn,
    -- end LSN of the last source transaction committed here (or a later idle position).
    applied_lsn           pg_lsn,
    -- source commit time of the last applied transaction, and when it was applied here.
    last_commit_time      timestamptz,
    last_applied_at       timestamptz,
    snapshot_started_at   timestamptz,
    snapshot_finished_at  timestamptz,
    updated_at            timestamptz NOT NULL DEFAULT now()
);

-- One row per migrated table.
CREATE TABLE IF NOT EXISTS pgvshift.tables (
    slot            text NOT NULL REFERENCES pgvshift.progress (slot) ON DELETE CASCADE,
    source_table    text NOT NULL,
    target_schema   text NOT NULL,
    target_name     text NOT NULL,
    -- pending -> copied -> indexed
    state           text NOT NULL CHECK (state IN ('pending', 'copied', 'indexed')),
    rows_copied     bigint NOT NULL DEFAULT 0,
    created_table   boolean NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (slot, source_table)
);

-- Changes applied per table since the stream began, committed with the changes themselves
-- (so `status` reports them exactly, across restarts). Added after the first release.
ALTER TABLE pgvshift.tables ADD COLUMN IF NOT EXISTS inserts bigint NOT NULL DEFAULT 0;
ALTER TABLE pgvshift.tables ADD COLUMN IF NOT EXISTS updates bigint NOT NULL DEFAULT 0;
ALTER TABLE pgvshift.tables ADD COLUMN IF NOT EXISTS deletes bigint NOT NULL DEFAULT 0;
ALTER TABLE pgvshift.tables ADD COLUMN IF NOT EXISTS truncates bigint NOT NULL DEFAULT 0;
