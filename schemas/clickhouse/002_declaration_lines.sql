-- One row per declared line. Sort key: duties per heading (first 4 HS digits) and day.
-- (declaration_id, line_no) identifies a line; heading and declared_at are functions of the
-- declaration, so a redelivered line replaces its first copy.
CREATE TABLE IF NOT EXISTS declaration_lines
(
    declaration_id String,
    line_no UInt16,
    order_id String,
    warehouse_id String,
    declared_at Date,
    sku String,
    hs_code String,
    heading String MATERIALIZED substring(hs_code, 1, 4),
    hs_source String,
    qty Int64,
    value_tiyn Int64,
    duty_tiyn Int64,
    excise_tiyn Int64,
    vat_tiyn Int64,
    ingested_at DateTime DEFAULT now(),
    value Decimal(18, 2) ALIAS toDecimal64(value_tiyn, 2) / 100,
    duty Decimal(18, 2) ALIAS toDecimal64(duty_tiyn, 2) / 100,
    excise Decimal(18, 2) ALIAS toDecimal64(excise_tiyn, 2) / 100,
    vat Decimal(18, 2) ALIAS toDecimal64(vat_tiyn, 2) / 100
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(declared_at)
ORDER BY (declared_at, heading, declaration_id, line_no);
