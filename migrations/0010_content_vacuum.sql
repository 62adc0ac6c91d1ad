-- Content churns: every delete and replacement leaves its chunks dead (the
-- bytes live in file_chunks' TOAST table), and their space serves new
-- uploads only once vacuumed. With the defaults (a fifth of the table dead,
-- at a throttled pace) a busy store wrote gigabytes past what it held, and
-- a full content volume stayed full after users deleted files (`make
-- soak`). Vacuum after 64 MiB of dead content whatever the table's size,
-- unthrottled: it mostly marks freed pages.
ALTER TABLE file_chunks SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 64,
    autovacuum_vacuum_cost_delay = 0,
    toast.autovacuum_vacuum_scale_factor = 0,
    toast.autovacuum_vacuum_threshold = 32768,
    toast.autovacuum_vacuum_cost_delay = 0
);
