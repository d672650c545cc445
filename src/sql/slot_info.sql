-- One replication slot as the source reports it (src/source/slot.rs). $1: slot name.
-- `this_database` is NULL for a physical slot; `retained_bytes` is the WAL the slot holds back.
SELECT plugin::text                                               AS plugin,
       database::text                                             AS database,
       database = current_database()                              AS this_database,
       active                                                     AS active,
       active_pid                                                 AS active_pid,
       confirmed_flush_lsn::text                                  AS confirmed_flush_lsn,
       wal_status                                                 AS wal_status,
       pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint AS retained_bytes
  FROM pg_replication_slots
 WHERE slot_name = $1
