-- Columns of one table, in attnum order, with the type as the target must create it.
-- $1: schema name, $2: table name (unquoted, as in pg_class).
-- The session's search_path is set so extension types (vector, halfvec, ...) print unqualified
-- while user types in other schemas stay schema-qualified.
SELECT a.attname::text                            AS name,
       a.attnum                                   AS attnum,
       format_type(a.atttypid, a.atttypmod)       AS type_sql,
       t.typname::text                            AS type_name,
       tn.nspname::text                           AS type_schema,
       a.atttypid                                 AS type_oid,
       a.atttypmod                                AS type_modifier,
       a.attnotnull                               AS not_null,
       t.typtype::text                            AS type_kind,
       coalesce(et.typtype::text, '')             AS elem_kind,
       coalesce(et.oid >= 16384, false)           AS elem_is_user_type,
       a.attgenerated::text                       AS generated,
       CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END AS generation_expr
FROM pg_attribute a
JOIN pg_class c        ON c.oid = a.attrelid
JOIN pg_namespace n    ON n.oid = c.relnamespace
JOIN pg_type t         ON t.oid = a.atttypid
JOIN pg_namespace tn   ON tn.oid = t.typnamespace
LEFT JOIN pg_type et   ON et.oid = t.typelem AND t.typcategory = 'A'
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
