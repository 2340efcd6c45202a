-- One row per `risk-score/1` on risk.hits (scores with a hit or a selection; stream/audit/risk_rows.py).
-- A score repeated after a crash carries the same declaration_id and declared_on, so ReplacingMergeTree
-- keeps one copy; queries that count use FINAL. No personal data: the buyer never appears in a score.
CREATE TABLE IF NOT EXISTS risk_scores
(
    declaration_id String,
    order_id String,
    declared_on Date,
    profile String COMMENT 'risk profile that scored it',
    score_permyriad UInt16 COMMENT 'score x 10000 (0..10000)',
    revenue_at_risk_tiyn Int64,
    selected String COMMENT 'risk, random, or empty when not selected',
    indicators Array(String),
    stream_partition UInt16,
    ingested_at DateTime DEFAULT now(),
    revenue_at_risk Decimal(18, 2) ALIAS toDecimal64(revenue_at_risk_tiyn, 2) / 100
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(declared_on)
ORDER BY (declared_on, declaration_id);
