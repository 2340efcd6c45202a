-- `taxfree-decision/1` documents (topic taxfree.decisions): a document's pending decision, then its
-- final one (refund or refusal). ReplacingMergeTree(stage) keeps the row of the highest stage per
-- document_id (pending 0, final 1), and a redelivered decision replaces its first copy; queries use
-- FINAL. No partitioning by date: the final row must merge with the pending one it replaces.
-- No personal data: the buyer is buyer_ref, the keyed hash (HMAC-SHA256) of the passport.
-- pay_from / pay_by are 1970-01-01 on a refusal (it has no payment dates).
CREATE TABLE IF NOT EXISTS taxfree_decisions
(
    document_id String,
    decision String COMMENT 'refund, refusal or pending',
    stage UInt8 COMMENT '0 pending, 1 final',
    reasons Array(String),
    trading_entity_bin String,
    buyer_ref String COMMENT 'HMAC-SHA256 of COUNTRY:NUMBER of the passport, keyed by the operator',
    vat_tiyn Int64,
    commission_tiyn Int64,
    refund_tiyn Int64,
    pay_from Date,
    pay_by Date,
    decided_on Date COMMENT 'Kazakhstan date of the input (or the validity lapse) that decided',
    stream_partition UInt16,
    ingested_at DateTime DEFAULT now(),
    vat Decimal(18, 2) ALIAS toDecimal64(vat_tiyn, 2) / 100,
    commission Decimal(18, 2) ALIAS toDecimal64(commission_tiyn, 2) / 100,
    refund Decimal(18, 2) ALIAS toDecimal64(refund_tiyn, 2) / 100
)
ENGINE = ReplacingMergeTree(stage)
ORDER BY document_id;
