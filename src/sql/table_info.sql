-- One table: oid, kind, replica identity, planner estimates.
-- $1: schema name, $2: table name.
SELECT c.oid                                      AS relid,
       c.relkind::text                            AS relkind,
       c.relreplident::text                       AS replica_identity,
       greatest(c.reltuples, 0)::bigint           AS estimated_rows,
       pg_total_relation_size(c.oid)              AS total_bytes,
       pg_table_size(c.oid)                       AS table_bytes,
       c.relispartition                           AS is_partition,
       quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS printed_name
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = $2
