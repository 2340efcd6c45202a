"""Settings, read in one place from documented environment variables.

Every variable has a default that runs the embedded set-up on loopback. The table in README.md
("Configuration") lists them; tests/test_readme.py keeps the two in step.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DATA_DIR = Path(__file__).parent / "rules" / "data"

# name -> (default, meaning). The single source of truth for documentation and parsing.
ENVIRONMENT: dict[str, tuple[str, str]] = {
    "KAFKA_BROKER": ("kafka://127.0.0.1:9092", "Kafka bootstrap URL(s), comma-separated"),
    "CUSTOMS_TARIFF": (str(DATA_DIR / "tariff.csv"), "tariff CSV (longest-prefix HS rates, excise)"),
    "CUSTOMS_FX": (str(DATA_DIR / "fx.csv"), "exchange-rate CSV (KZT per unit, by date)"),
    "CUSTOMS_RULE_SETS": (str(DATA_DIR / "rule_sets.json"), "effective-dated rule sets (parcel regimes, VAT)"),
    "CUSTOMS_PARTITIONS": ("4", "partitions of goods.inbound and orders (equal: co-partitioned)"),
    "CUSTOMS_PENDING_HOLD_SECONDS": ("300", "how long an order short of stock waits before rejection"),
    "CUSTOMS_APP_ID": ("customs-stream", "Faust application id (consumer group, changelog prefix)"),
    "CUSTOMS_DATA_DIR": ("var", "working directory for table state, local services and logs"),
    "CUSTOMS_METRICS_PORT": ("9464", "Prometheus metrics port of a worker (0: off)"),
    "CUSTOMS_METRICS_HOST": ("127.0.0.1", "address the metrics port binds to (0.0.0.0 in containers)"),
    "CUSTOMS_WEB_PORT": ("6066", "Faust web port of a worker"),
    "CLICKHOUSE_URL": ("", "clickhouse://host:port/database for the analytics sink (empty: no sink)"),
    "CUSTOMS_SINK_BATCH_ROWS": ("50000", "sink: flush a partition's buffer at this many rows"),
    "CUSTOMS_SINK_MAX_AGE_SECONDS": ("2.0", "sink: flush a buffer at this age"),
    "CUSTOMS_SINK_MAX_ROWS": ("1000000", "sink: buffered rows at most before backpressure"),
    "CUSTOMS_SESSION_TIMEOUT_SECONDS": ("10", "worker: Kafka group session timeout (a dead worker's partitions move after it)"),
    "CUSTOMS_HEARTBEAT_SECONDS": ("1", "worker: Kafka group heartbeat interval"),
    "CUSTOMS_REBALANCE_TIMEOUT_SECONDS": ("3", "worker: how long a rebalance waits for members to (re)join (Tansu waits it out on every join)"),
    "CUSTOMS_COMMIT_INTERVAL_SECONDS": ("2.8", "worker: how often consumed offsets are committed"),
    "CUSTOMS_PAGES_IN_FLIGHT": ("4", "worker: pages processed ahead of their outputs' acknowledgement (1: one page at a time)"),
    "CUSTOMS_PAGE_BYTES": ("1000000", "largest message (a page) producers and consumers handle, bytes"),
    "CUSTOMS_FETCH_WAIT_MS": ("100", "worker: longest a fetch waits at the broker for new input (Faust's own 1500 ms held a busy input back while a fetch of the idle ones waited it out)"),
    "CUSTOMS_SNAPSHOT_RECORDS": ("5000", "worker: a partition's state is snapshotted after this many records and the older ones deleted from its changelog (0: never)"),
    "CUSTOMS_ORDER_IDS_HOURS": ("168", "warehouse: how long an order id is remembered to recognise a redelivery (after it, the same order is new)"),
    "CUSTOMS_STREAM_PUREPYTHON": ("0", "1: run every kernel on its pure-Python twin (read by stream/_backend.py)"),
    "CUSTOMS_OUTPUT_COMPRESSION": ("none", "worker: codec of the batches it writes (none, gzip, snappy, lz4, zstd); input batches of every codec are read whatever this says"),
    "CUSTOMS_MALLOC": ("bounded", "worker: the C allocator's settings, `bounded` (mmap and trim thresholds 128 KB, 2 arenas: freed buffers go back to the system; the 30-minute soak's RSS stayed within 10%; stream/_malloc.py) or `glibc` (its own)"),
    "CUSTOMS_METRICS_WAREHOUSES": ("", "metrics: warehouse ids that get a label value of their own, comma-separated; every other warehouse is counted as `other` (per-warehouse detail is in ClickHouse)"),
}

# Each domain's variables, in its own block (read with `env(name)`); one table all the same.
AUDIT_ENVIRONMENT: dict[str, tuple[str, str]] = {
    "CUSTOMS_AUDIT_CALENDAR": (str(Path(__file__).parent / "audit" / "data" / "kz_calendar.json"),
                               "audit: Kazakhstan working-day calendar (religious dates, decree transfers, covered years)"),
    "CUSTOMS_AUDIT_TICK_SECONDS": ("60", "audit: how often the case agent checks deadlines"),
    "CUSTOMS_AUDIT_TODAY": ("", "audit: a fixed 'today' (YYYY-MM-DD) for the case agent, for tests and demos; empty: the date in Kazakhstan (UTC+5)"),
    "CUSTOMS_PARCEL_OPERATOR_BIN": ("", "parcel flow: BIN of the operator declaring parcels (a request's own `operator_bin` wins; neither: the parcel is rejected)"),
    "CUSTOMS_PARCEL_DEDUP_DAYS": ("3", "parcel flow: days an order id is remembered against redelivery (bounds the state)"),
}
RISK_ENVIRONMENT: dict[str, tuple[str, str]] = {
    "CUSTOMS_BUYER_SECRET": ("loopback-only-not-secret", "operator's key of buyer_ref = HMAC-SHA256(IIN) in declaration/2; the default is public, for loopback and tests only; production: a random secret of 32+ bytes (e.g. `openssl rand -hex 32`) from the operator's secret store, never changed (a new key re-keys every buyer_ref and breaks splitting history)"),
    "CUSTOMS_RISK_PROFILES": ("", "effective-dated risk profiles JSON (thresholds, windows, audit capacity, random rate; empty: stream/audit/data/risk_profiles.json)"),
    "CUSTOMS_RISK_APP_ID": ("customs-stream-risk", "risk agent: its own consumer group and changelog prefix on `declarations`, so it scales apart from the worker"),
}
TAXFREE_ENVIRONMENT: dict[str, tuple[str, str]] = {
    "CUSTOMS_TAXFREE_RULES": ("", "tax-free rules JSON (VAT, commission, MCI, airports, ...; empty: the shipped stream/taxfree/data/rules.json)"),
    "CUSTOMS_TAXFREE_COMMISSION_PCT": ("", "tax-free: the operator's commission in percent, overriding the rules file (above 20 the worker refuses to start)"),
    "CUSTOMS_TAXFREE_JWKS": ("", "tax-free: JWKS file of the trading entities' QR public keys (empty: taxfree/jwks.json under CUSTOMS_DATA_DIR)"),
    "CUSTOMS_TAXFREE_HOLD_SECONDS": ("60", "tax-free: how long a confirmation or cancellation waits for its document before unknown_document (and a document for its confirmation before a lapse)"),
    "CUSTOMS_TAXFREE_LAPSE_GRACE_DAYS": ("14", "tax-free: days after the validity's end before the worker's timer refuses an unconfirmed document (stamped paper copies reach the operator late)"),
    "CUSTOMS_TAXFREE_FINAL_DAYS": ("30", "tax-free: days after a document's final decision (refund or refusal) before its record is compacted to a tombstone (digests, decision, receipts held, what the API shows)"),
    "CUSTOMS_TAXFREE_PARTITIONS": ("1", "tax-free: partitions of the taxfree.* topics (more than one: receipts are claimed across partitions on taxfree.receipt-claims)"),
    "CUSTOMS_TAXFREE_JWT_ALG": ("EdDSA", "tax-free API: the one JWT algorithm accepted (EdDSA, ES256, RS256 or HS256; never taken from a token)"),
    "CUSTOMS_TAXFREE_JWT_PRIVATE_KEY": ("", "tax-free API: PEM private key (or HS256 secret file) `taxfree token` signs with (empty: created on first use under CUSTOMS_DATA_DIR)"),
    "CUSTOMS_TAXFREE_JWT_PUBLIC_KEY": ("", "tax-free API: PEM public key (or HS256 secret file) the worker verifies tokens with (empty: derived from the private key)"),
    "CUSTOMS_TAXFREE_JWT_ISSUER": ("customs-stream-taxfree", "tax-free API: required `iss` of tokens"),
    "CUSTOMS_TAXFREE_JWT_AUDIENCE": ("customs-stream-taxfree-api", "tax-free API: required `aud` of tokens"),
    "CUSTOMS_TAXFREE_VERIFY_THREADS": ("1", "tax-free: helper threads for the QR signature checks of a page, run ahead of its decisions (0: all on the deciding thread; a page's checks run on one helper, more only let the next page's start while the last one's stops)"),
    "CUSTOMS_TAXFREE_PII_KEY": ("", "tax-free: secret file for the keyed hash (HMAC-SHA256) of passports and cards (empty: created on first use under CUSTOMS_DATA_DIR)"),
}
LOCALCONTENT_ENVIRONMENT: dict[str, tuple[str, str]] = {
    "CUSTOMS_LOCAL_CONTENT_RULES": ("", "local content: directory of replacement rule files (formulas.csv, vat.csv, thresholds.csv; each one present replaces the shipped file); empty: the shipped rules"),
}
for _block in (AUDIT_ENVIRONMENT, RISK_ENVIRONMENT, TAXFREE_ENVIRONMENT, LOCALCONTENT_ENVIRONMENT):
    for _name, _entry in _block.items():
        if _name in ENVIRONMENT:
            raise RuntimeError(f"setting {_name} is defined twice")
        ENVIRONMENT[_name] = _entry


def env(name: str) -> str:
    """The value of a documented variable (its default when unset)."""
    return os.environ.get(name, ENVIRONMENT[name][0])


_env = env


@dataclass(frozen=True)
class Settings:
    broker: str = field(default_factory=lambda: _env("KAFKA_BROKER"))
    tariff_path: Path = field(default_factory=lambda: Path(_env("CUSTOMS_TARIFF")))
    fx_path: Path = field(default_factory=lambda: Path(_env("CUSTOMS_FX")))
    rule_sets_path: Path = field(default_factory=lambda: Path(_env("CUSTOMS_RULE_SETS")))
    partitions: int = field(default_factory=lambda: int(_env("CUSTOMS_PARTITIONS")))
    pending_hold_seconds: float = field(default_factory=lambda: float(_env("CUSTOMS_PENDING_HOLD_SECONDS")))
    app_id: str = field(default_factory=lambda: _env("CUSTOMS_APP_ID"))
    data_dir: Path = field(default_factory=lambda: Path(_env("CUSTOMS_DATA_DIR")))
    metrics_port: int = field(default_factory=lambda: int(_env("CUSTOMS_METRICS_PORT")))
    metrics_host: str = field(default_factory=lambda: _env("CUSTOMS_METRICS_HOST"))
    web_port: int = field(default_factory=lambda: int(_env("CUSTOMS_WEB_PORT")))
    clickhouse_url: str = field(default_factory=lambda: _env("CLICKHOUSE_URL"))
    sink_batch_rows: int = field(default_factory=lambda: int(_env("CUSTOMS_SINK_BATCH_ROWS")))
    sink_max_age_seconds: float = field(default_factory=lambda: float(_env("CUSTOMS_SINK_MAX_AGE_SECONDS")))
    sink_max_rows: int = field(default_factory=lambda: int(_env("CUSTOMS_SINK_MAX_ROWS")))
    session_timeout_seconds: float = field(default_factory=lambda: float(_env("CUSTOMS_SESSION_TIMEOUT_SECONDS")))
    heartbeat_seconds: float = field(default_factory=lambda: float(_env("CUSTOMS_HEARTBEAT_SECONDS")))
    rebalance_timeout_seconds: float = field(default_factory=lambda: float(_env("CUSTOMS_REBALANCE_TIMEOUT_SECONDS")))
    commit_interval_seconds: float = field(default_factory=lambda: float(_env("CUSTOMS_COMMIT_INTERVAL_SECONDS")))
    page_bytes: int = field(default_factory=lambda: int(_env("CUSTOMS_PAGE_BYTES")))
    pages_in_flight: int = field(default_factory=lambda: int(_env("CUSTOMS_PAGES_IN_FLIGHT")))
    fetch_wait_ms: int = field(default_factory=lambda: int(_env("CUSTOMS_FETCH_WAIT_MS")))
    # aiokafka's compression_type: None or a codec name
    output_compression: str | None = field(default_factory=lambda: output_compression(_env("CUSTOMS_OUTPUT_COMPRESSION")))
    metrics_warehouses: tuple[str, ...] = field(default_factory=lambda: tuple(
        w.strip() for w in _env("CUSTOMS_METRICS_WAREHOUSES").split(",") if w.strip()))


OUTPUT_CODECS = ("none", "gzip", "snappy", "lz4", "zstd")


def output_compression(value: str) -> str | None:
    """CUSTOMS_OUTPUT_COMPRESSION as aiokafka's `compression_type` (None: uncompressed)."""
    codec = value.strip().lower()
    if codec not in OUTPUT_CODECS:
        raise ValueError(f"CUSTOMS_OUTPUT_COMPRESSION={value!r}: expected one of {', '.join(OUTPUT_CODECS)}")
    return None if codec == "none" else codec


def load() -> Settings:
    return Settings()
