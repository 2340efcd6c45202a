-- `rejection/1` documents. rejection_id is a digest of the document and of where it came from
-- (its `source` input when it names one, else its own position in the rejections topic; see
-- stream/analytics/rejection_rows.py): identical rejections of distinct inputs stay distinct rows.
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
