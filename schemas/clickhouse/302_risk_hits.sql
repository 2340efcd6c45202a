-- One row per indicator hit of a `risk-score/1` (stream/audit/risk_rows.py): what the audit team
-- filters by indicator and ranks by money. line is -1 for findings about the whole declaration
-- (splitting, trader_risk). evidence is the hit's evidence object as JSON (no personal data).
CREATE TABLE IF NOT EXISTS risk_hits
(
    declaration_id String,
    declared_on Date,
    indicator String,
    line Int32,
    profile String,
    score_permyriad UInt16 COMMENT 'the indicator confidence x 10000',
    revenue_at_risk_tiyn Int64,
    selected String COMMENT 'the declaration: risk, random, or empty',
    evidence String COMMENT 'JSON object',
    stream_partition UInt16,
    ingested_at DateTime DEFAULT now(),
    revenue_at_risk Decimal(18, 2) ALIAS toDecimal64(revenue_at_risk_tiyn, 2) / 100
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(declared_on)
ORDER BY (indicator, declared_on, declaration_id, line);
