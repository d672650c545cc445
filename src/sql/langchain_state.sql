-- pgvshift's LangChain state on the TARGET (src/langchain). Like pgvshift.progress, every row
-- here changes in the same transaction as the data it describes.
CREATE SCHEMA IF NOT EXISTS pgvshift;

-- One row per slot that runs in LangChain mode.
CREATE TABLE IF NOT EXISTS pgvshift.langchain (
    slot                      text PRIMARY KEY REFERENCES pgvshift.progress (slot) ON DELETE CASCADE,
    layout                    text NOT NULL,
    -- the collection tables' id column and its type (for the casts in the functions below)
    id_column                 text NOT NULL,
    id_type                   text NOT NULL,
    -- their other columns (a row that changes collection is copied with these)
    other_columns             text[] NOT NULL,
    -- rows not migrated: collection_id NULL, or a collection that is not selected
    skipped_null_collection   bigint NOT NULL DEFAULT 0,
    skipped_unselected        bigint NOT NULL DEFAULT 0,
    updated_at                timestamptz NOT NULL DEFAULT now()
);

-- One row per collection seen (selected or not), with the table it maps to.
CREATE TABLE IF NOT EXISTS pgvshift.langchain_collections (
    slot            text NOT NULL REFERENCES pgvshift.langchain (slot) ON DELETE CASCADE,
    collection      uuid NOT NULL,
    name            text,
    selected        boolean NOT NULL,
    target_schema   text,
    target_name     text,
    -- pgvshift created the table (a snapshot restart drops it; else it only empties it)
    created_table   boolean NOT NULL DEFAULT false,
    -- 'deleted': the collection was deleted on the source (its table is kept, empty, unless
    -- drop_deleted_collections)
    state           text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'deleted')),
    rows_copied     bigint NOT NULL DEFAULT 0,
    rows_streamed   bigint NOT NULL DEFAULT 0,
    skipped_rows    bigint NOT NULL DEFAULT 0,
    index_built     boolean NOT NULL DEFAULT false,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (slot, collection)
);

-- id -> collection: which table holds each migrated row, so that a delete (whose old row
-- carries only the key) and an update that changes collection_id find the row without looking
-- into every table. key = the source's primary key (id; uuid's text in the community layout);
-- target_id = the target id when it differs from key (community layout: custom_id).
CREATE TABLE IF NOT EXISTS pgvshift.langchain_routes (
    slot        text NOT NULL,
    key         text NOT NULL,
    collection  uuid NOT NULL,
    target_id   text,
    PRIMARY KEY (slot, key)
);

-- Rows an update addressed that the target does not hold (they were skipped when their
-- collection was not selected) and whose new values arrived incomplete (unchanged TOAST):
-- fetched from the source before the batch commits.
CREATE TABLE IF NOT EXISTS pgvshift.langchain_missing (
    slot        text NOT NULL,
    key         text NOT NULL,
    PRIMARY KEY (slot, key)
);

-- "schema"."table" of a collection.
CREATE OR REPLACE FUNCTION pgvshift.langchain_table(p_slot text, p_collection uuid) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT format('%I.%I', target_schema, target_name) FROM pgvshift.langchain_collections
     WHERE slot = p_slot AND collection = p_collection
$$;

-- A source DELETE: remove the row from whichever table holds it (nothing if none does).
CREATE OR REPLACE FUNCTION pgvshift.langchain_delete(p_slot text, p_key text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r pgvshift.langchain_routes;
    l pgvshift.langchain;
BEGIN
    DELETE FROM pgvshift.langchain_routes WHERE slot = p_slot AND key = p_key RETURNING * INTO r;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT * INTO STRICT l FROM pgvshift.langchain WHERE slot = p_slot;
    EXECUTE format('DELETE FROM %s WHERE %I = $1::%s',
                   pgvshift.langchain_table(p_slot, r.collection), l.id_column, l.id_type)
      USING coalesce(r.target_id, r.key);
END
$$;

-- Before a source UPDATE is applied: make sure the row sits in the table of its new collection
-- (p_collection; NULL when that collection is not migrated) under its new id, moving it
-- between tables when collection_id changed (copying the stored values, so unchanged TOASTed
-- ones come along). The caller then applies the UPDATE (or, with p_complete, an upsert) there.
-- A row the target does not hold is recorded as missing unless p_complete (then the upsert
-- creates it and its route is added here).
CREATE OR REPLACE FUNCTION pgvshift.langchain_place(p_slot text, p_old_key text, p_new_key text,
                                                    p_collection uuid, p_target_id text,
                                                    p_complete boolean) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r pgvshift.langchain_routes;
    l pgvshift.langchain;
    old_id text;
    new_target_id text := nullif(p_target_id, p_new_key);
BEGIN
    SELECT * INTO r FROM pgvshift.langchain_routes WHERE slot = p_slot AND key = p_old_key;
    IF NOT FOUND THEN
        IF p_collection IS NULL THEN
            RETURN;
        ELSIF p_complete THEN
            INSERT INTO pgvshift.langchain_routes VALUES (p_slot, p_new_key, p_collection, new_target_id);
            DELETE FROM pgvshift.langchain_missing WHERE slot = p_slot AND key = p_new_key;
        ELSE
            INSERT INTO pgvshift.langchain_missing VALUES (p_slot, p_new_key) ON CONFLICT DO NOTHING;
        END IF;
        RETURN;
    END IF;
    old_id := coalesce(r.target_id, r.key);
    IF r.collection = p_collection AND old_id = p_target_id AND p_old_key = p_new_key THEN
        RETURN;
    END IF;
    SELECT * INTO STRICT l FROM pgvshift.langchain WHERE slot = p_slot;
    IF r.collection = p_collection THEN
        IF old_id <> p_target_id THEN
            EXECUTE format('UPDATE %s SET %I = $1::%s WHERE %I = $2::%s',
                           pgvshift.langchain_table(p_slot, r.collection),
                           l.id_column, l.id_type, l.id_column, l.id_type)
              USING p_target_id, old_id;
        END IF;
        UPDATE pgvshift.langchain_routes SET key = p_new_key, target_id = new_target_id
         WHERE slot = p_slot AND key = p_old_key;
        RETURN;
    END IF;
    IF p_collection IS NOT NULL THEN
        EXECUTE format('INSERT INTO %s (%I, %s) SELECT $1::%s, %s FROM %s WHERE %I = $2::%s',
                       pgvshift.langchain_table(p_slot, p_collection), l.id_column,
                       (SELECT string_agg(quote_ident(c), ', ') FROM unnest(l.other_columns) c), l.id_type,
                       (SELECT string_agg(quote_ident(c), ', ') FROM unnest(l.other_columns) c),
                       pgvshift.langchain_table(p_slot, r.collection), l.id_column, l.id_type)
          USING p_target_id, old_id;
        UPDATE pgvshift.langchain_routes
           SET key = p_new_key, collection = p_collection, target_id = new_target_id
         WHERE slot = p_slot AND key = p_old_key;
    ELSE
        DELETE FROM pgvshift.langchain_routes WHERE slot = p_slot AND key = p_old_key;
    END IF;
    EXECUTE format('DELETE FROM %s WHERE %I = $1::%s',
                   pgvshift.langchain_table(p_slot, r.collection), l.id_column, l.id_type)
      USING old_id;
END
$$;
