"""Every topic of every domain, named once, and the plan that creates them.

Inputs that one agent reads together are co-partitioned: the same key (warehouse_id, case_id,
document_id) and the same partition count, so one key's state lives in one partition
(CO_PARTITIONED). Tansu's CreatePartitions is a no-op, so `topic_plan` lists every topic up front,
Faust's internal ones included (a table's changelog: ``{app_id}-{table}-changelog``).
"""
from __future__ import annotations

# the warehouse, keyed by warehouse_id (contracts in schemas/)
INBOUND = "goods.inbound"
ORDERS = "orders"
MOVEMENTS = "stock.movements"
DECLARATIONS = "declarations"
REJECTIONS = "rejections"
# parcels straight to a buyer: assessment-request/1 documents, declared like orders
PARCELS = "parcels"
# post-release control, keyed by case_id: a selected risk score opens a case
RISK_HITS = "risk.hits"
# the risk agent's own input: `declarations` re-keyed by buyer_ref, in page/1 pages (stream/audit/risk_route.py)
RISK_DECLARATIONS = "risk.declarations"
AUDIT_EVENTS = "audit.events"
AUDIT_CASES = "audit.cases"
# tax-free VAT refunds, keyed by document_id
TAXFREE_DOCUMENTS = "taxfree.documents"
TAXFREE_CONFIRMATIONS = "taxfree.confirmations"
TAXFREE_CANCELLATIONS = "taxfree.cancellations"
TAXFREE_DECISIONS = "taxfree.decisions"
# a receipt counts in one live document across partitions: claims go to the receipt's partition
# (key = BIN:number), answers come back to the document's (key = document_id); both read by the
# tax-free agent, with the tax-free topics' partition count (stream/taxfree/claims.py)
TAXFREE_RECEIPT_CLAIMS = "taxfree.receipt-claims"
TAXFREE_RECEIPT_ANSWERS = "taxfree.receipt-answers"

# the warehouse pipeline's topics (what docker-compose creates today)
PUBLIC_TOPICS = (INBOUND, ORDERS, MOVEMENTS, DECLARATIONS, REJECTIONS)
ALL_TOPICS = PUBLIC_TOPICS + (PARCELS, RISK_HITS, RISK_DECLARATIONS, AUDIT_EVENTS, AUDIT_CASES, TAXFREE_DOCUMENTS,
                              TAXFREE_CONFIRMATIONS, TAXFREE_CANCELLATIONS, TAXFREE_DECISIONS,
                              TAXFREE_RECEIPT_CLAIMS, TAXFREE_RECEIPT_ANSWERS)
# topics read together by one agent: same key, same partition count
CO_PARTITIONED = (
    (INBOUND, ORDERS),
    (RISK_HITS, AUDIT_EVENTS),
    (TAXFREE_DOCUMENTS, TAXFREE_CONFIRMATIONS, TAXFREE_CANCELLATIONS, TAXFREE_RECEIPT_CLAIMS,
     TAXFREE_RECEIPT_ANSWERS),
)

# the warehouse agent's table (its changelog is `{app_id}-stock-changelog`)
STOCK_TABLE = "stock"


def changelog_topic(app_id: str, table: str) -> str:
    """The topic Faust writes a table's changes to."""
    return f"{app_id}-{table}-changelog"


# the tax-free state table (its changelog is `{app_id}-taxfree-changelog`)
TAXFREE_TABLE = "taxfree"
TAXFREE_TOPICS = (TAXFREE_DOCUMENTS, TAXFREE_CONFIRMATIONS, TAXFREE_CANCELLATIONS, TAXFREE_DECISIONS,
                  TAXFREE_RECEIPT_CLAIMS, TAXFREE_RECEIPT_ANSWERS)


def partitions_of(topic_or_table: str, partitions: int) -> int:
    """The partition count of a topic or a table's changelog. The tax-free topics have their own
    (CUSTOMS_TAXFREE_PARTITIONS, default 1): a receipt may count in one live document only, and that
    check sees the documents of one partition."""
    if topic_or_table in TAXFREE_TOPICS or topic_or_table == TAXFREE_TABLE:
        from stream.settings import env

        return int(env("CUSTOMS_TAXFREE_PARTITIONS"))
    return partitions


def topic_plan(partitions: int, app_id: str, tables: tuple[str, ...] = (STOCK_TABLE,)) -> dict[str, int]:
    """Every topic the workers of ``app_id`` use (with ``tables``) -> its partition count."""
    plan = {name: partitions_of(name, partitions) for name in ALL_TOPICS}
    for table in tables:
        plan[changelog_topic(app_id, table)] = partitions_of(table, partitions)
    plan[f"{app_id}-__assignor-__leader"] = 1
    return plan
