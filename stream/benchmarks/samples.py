"""Assessment requests for benchmarks and the offline demo, derived from the load generator's feed
(stream/loadgen.py) so that both use one catalogue of realistic goods."""
from __future__ import annotations

import orjson

from stream.loadgen import FeedConfig, generate
from stream.warehouse.stock import REQUEST_FACT_FIELDS




def assessment_requests(orders: int, seed: int = 1, parcel_share: int = 5) -> list[dict]:
    """``orders`` assessment-request/1 documents: the feed's orders with the goods facts of the
    manifests that brought their SKUs in; every ``parcel_share``-th one in the parcel flow."""
    facts: dict[str, dict] = {}
    requests: list[dict] = []
    for page in generate(FeedConfig(orders=orders, seed=seed, page_size=1000)):
        for item in orjson.loads(page.value)["items"]:
            if item["schema"] == "goods-manifest/1":
                for line in item["lines"]:
                    facts[line["sku"]] = line
                continue
            lines = []
            for line in item["lines"]:
                goods = facts[line["sku"]]
                lines.append({**line, **{key: goods[key] for key in REQUEST_FACT_FIELDS if key in goods}})
            flow = "parcel" if len(requests) % parcel_share == 0 else "warehouse"
            requests.append({"schema": "assessment-request/1", "order_id": item["order_id"],
                             "marketplace": item["marketplace"], "flow": flow, "ordered_at": item["ordered_at"],
                             "buyer": item["buyer"], "lines": lines})
    return requests
