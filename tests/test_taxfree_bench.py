"""`customs-stream bench taxfree`: what it measures is what it claims (every document decided, and with
--partitions each page holds the documents of one partition)."""
from __future__ import annotations

import orjson
import pytest

from stream.taxfree import bench
from stream.taxfree.claims import partition_of


def test_in_process_run_decides_and_refunds_every_document():
    result = bench.run(40, True, 1)
    assert result["decisions"] == 80 and result["refunds"] == 40 and result["signature_checks"] == 40


@pytest.mark.parametrize("partitions", [1, 4])
def test_pages_hold_one_partition_each(partitions):
    messages, _ = bench.inputs(60, False)
    pages = bench.paged(messages, 7, partitions)
    items = [orjson.loads(v)["items"] for _, _, v in pages]
    assert sorted(i["document_id"] for page in items for i in page) == sorted(k.decode() for _, k, _ in messages)
    for (_, key, _), page in zip(pages, items):
        assert len(page) <= 7
        assert {partition_of(i["document_id"].encode(), partitions) for i in page} == {partition_of(key, partitions)}


@pytest.mark.broker
@pytest.mark.slow
def test_stream_run_across_partitions():
    result = bench.run_stream(300, timeout=180, page_size=50, partitions=4)
    assert result["decisions"] >= 300 and result["partitions"] == 4
