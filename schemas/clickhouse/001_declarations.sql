-- One row per declaration (an `assessment/1` released from a customs warehouse).
-- Money is stored as exact integer tiyn (Int64); the Decimal(18,2) KZT columns are aliases.
-- A redelivered declaration carries the same declaration_id (deterministic from order_id) and the
-- same warehouse_id and declared_at, so it lands on the same sort key in the same partition and
-- ReplacingMergeTree keeps one copy; queries that count use FINAL (or GROUP BY declaration_id).
-- Sort key: the operators ask per warehouse and day.
CREATE TABLE IF NOT EXISTS declarations
(
    declaration_id String,
    order_id String,
    warehouse_id String,
    operator_bin String,
    flow String,
    declared_at Date,
    rule_set String,
    lines UInt32,
    customs_value_tiyn Int64,
    duty_tiyn Int64,
    excise_tiyn Int64,
    vat_tiyn Int64,
    total_tiyn Int64,
    fx String COMMENT 'JSON object: currency -> KZT per unit, as used by the assessment',
    flags Array(String),
    stream_partition UInt16 COMMENT 'stream partition the row came from',
    ingested_at DateTime DEFAULT now(),
    customs_value Decimal(18, 2) ALIAS toDecimal64(customs_value_tiyn, 2) / 100,
    duty Decimal(18, 2) ALIAS toDecimal64(duty_tiyn, 2) / 100,
    excise Decimal(18, 2) ALIAS toDecimal64(excise_tiyn, 2) / 100,
    vat Decimal(18, 2) ALIAS toDecimal64(vat_tiyn, 2) / 100,
    total Decimal(18, 2) ALIAS toDecimal64(total_tiyn, 2) / 100
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(declared_at)
ORDER BY (warehouse_id, declared_at, declaration_id);
