-- The latest `audit-case/1` of each cameral audit case (stream/audit/rows.py). Every change publishes
-- the whole case with a higher `version`, so ReplacingMergeTree(version) keeps the latest; a snapshot
-- repeated after a crash is the same row. Queries use FINAL. Dates not reached yet are 1970-01-01
-- (ClickHouse's empty Date). The findings text stays out: officers may quote names in it.
CREATE TABLE IF NOT EXISTS audit_cases
(
    case_id String,
    declaration_id String,
    state String,
    source String COMMENT 'risk or officer',
    opened_on Date,
    delivered_on Date,
    comply_by Date,
    explanation_received_on Date,
    answer_by Date,
    closed_on Date,
    accruals_tiyn Int64,
    paid_tiyn Int64,
    outstanding_tiyn Int64,
    overdue UInt8,
    version UInt32,
    changed_by String,
    risk_profile String COMMENT 'profile of the risk score that opened it, empty for an officer',
    stream_partition UInt16,
    ingested_at DateTime DEFAULT now(),
    accruals Decimal(18, 2) ALIAS toDecimal64(accruals_tiyn, 2) / 100,
    paid Decimal(18, 2) ALIAS toDecimal64(paid_tiyn, 2) / 100,
    outstanding Decimal(18, 2) ALIAS toDecimal64(outstanding_tiyn, 2) / 100
)
ENGINE = ReplacingMergeTree(version)
ORDER BY case_id;
