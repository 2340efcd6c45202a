-- Goods entering and leaving customs control: received (+qty) and declared (-qty).
-- Goods under control per warehouse and day = running sum of `delta`. A movement_id is
-- deterministic for its cause (partition, stock transaction, warehouse, sku, kind), so a
-- repeated transaction replaces its first copy. No time partition: the sort key must not depend on a clock, only on the id.
CREATE TABLE IF NOT EXISTS stock_movements
(
    movement_id String,
    warehouse_id String,
    sku String,
    kind String COMMENT 'received | declared',
    qty Int64,
    delta Int64 MATERIALIZED if(kind = 'received', qty, -qty),
    at DateTime COMMENT 'UTC',
    day Date MATERIALIZED toDate(at),
    ref String COMMENT 'manifest_id or order_id',
    stream_partition UInt16,
    ingested_at DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY (warehouse_id, sku, movement_id);
