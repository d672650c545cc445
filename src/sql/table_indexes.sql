-- Indexes of one table (relid $1): the primary key's columns, and every index's definition.
SELECT i.indexrelid::regclass::text               AS qualified_name,
       ic.relname::text                           AS name,
       i.indisprimary                             AS is_primary,
       i.indisunique                              AS is_unique,
       i.indisreplident                           AS is_replica_identity,
       i.indisvalid                               AS is_valid,
       pg_get_indexdef(i.indexrelid)              AS definition,
       ARRAY(SELECT a.attname::text
               FROM unnest(i.indkey[0:i.indnkeyatts - 1]) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
              ORDER BY k.ord)                      AS key_columns
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
WHERE i.indrelid = $1
ORDER BY i.indisprimary DESC, ic.relname
