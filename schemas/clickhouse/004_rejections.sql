-- `rejection/1` documents. rejection_id is the document's own id when it has one, else a hash of
-- its content (ref, reason, detail, at), so a redelivered rejection replaces its first copy.
CREATE TABLE IF NOT EXISTS rejections
(
    rejection_id String,
    ref String,
    reason String,
    detail String,
    at DateTime COMMENT 'UTC; ingestion time when the document has no `at`',
    day Date MATERIALIZED toDate(at),
    stream_partition UInt16,
    ingested_at DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY (reason, rejection_id);
