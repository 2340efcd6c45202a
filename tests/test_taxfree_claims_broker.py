"""Receipts across partitions on the real broker: tax-free topics with 4 partitions, two workers in one
group, two documents naming one receipt keyed to different partitions (the second sent after the first
is pending). One is refunded, the other refused `duplicate_receipt`; a worker killed with SIGKILL in
between changes nothing (the survivor recovers the documents and the receipts' registry)."""
from __future__ import annotations

import json
import os
import signal

import orjson
import pytest

from stream.taxfree import samples
from stream.taxfree.claims import partition_of
from tests.fixtures.broker import start_broker, stop_broker_process
from tests.fixtures.pipeline import read_all, stop_worker
from tests.test_taxfree_broker import SELLERS, send_all, start_taxfree_worker

pytestmark = [pytest.mark.broker, pytest.mark.slow]

PARTITIONS = 4


def _decisions(bootstrap: str, until, timeout: float = 120.0) -> dict[str, list[dict]]:
    docs = read_all(bootstrap, ("taxfree.decisions",), lambda d: until(_by_doc(d["taxfree.decisions"])),
                    timeout=timeout, idle=2.0)
    return _by_doc(docs["taxfree.decisions"])


def _by_doc(decisions: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for d in decisions:
        out.setdefault(d["document_id"], []).append(d)
    return out


def test_one_receipt_two_partitions_one_refund_through_a_kill(tmp_path, monkeypatch):
    from datetime import datetime

    from stream.taxfree.rules import KZ_TIME

    monkeypatch.setenv("CUSTOMS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CUSTOMS_TAXFREE_PARTITIONS", str(PARTITIONS))  # the broker's topic plan too
    (tmp_path / "taxfree").mkdir()
    (tmp_path / "taxfree" / "jwks.json").write_text(json.dumps(samples.jwks(*SELLERS)))
    issued = f"{datetime.now(KZ_TIME).date().isoformat()}T15:00:00+05:00"
    later = issued.replace("T15:", "T18:")
    ids = ["TF-SHARE-0"]
    i = 1
    while len(ids) < 2:  # the second on another partition than the first
        candidate = f"TF-SHARE-{i}"
        if partition_of(candidate.encode(), PARTITIONS) != partition_of(ids[0].encode(), PARTITIONS):
            ids.append(candidate)
        i += 1
    shared = [{"number": "FMU-SHARED-1", "issued_at": issued.replace("T15:", "T14:"),
               "register_address": "Almaty, Abay 1, register 3"}]
    first = samples.document(ids[0], SELLERS[0], issued_at=issued, receipts=shared, passport="P00000001")
    second = samples.document(ids[1], SELLERS[0], issued_at=issued, receipts=shared, passport="P00000002")
    others = [samples.document(f"TF-OTHER-{n}", SELLERS[n % 3], issued_at=issued, passport=f"P1000000{n}")
              for n in range(8)]
    assert len({partition_of(d["document_id"].encode(), PARTITIONS) for d in others}) > 1

    broker = start_broker(partitions=1)
    env = {"CUSTOMS_TAXFREE_PARTITIONS": PARTITIONS}
    workers = [start_taxfree_worker(broker.url, tmp_path, tmp_path / f"worker-{n}.log", **env) for n in range(2)]
    survivor = None
    try:
        send_all(broker.bootstrap, [first, *others])
        seen = _decisions(broker.bootstrap, lambda d: {first["document_id"], *(o["document_id"] for o in others)} <= set(d))
        assert [d["decision"] for d in seen[ids[0]]] == ["pending"]
        os.kill(workers[0].pid, signal.SIGKILL)
        assert workers[0].wait(10) == -signal.SIGKILL
        survivor = workers[1]
        send_all(broker.bootstrap, [second])
        send_all(broker.bootstrap, [samples.confirmation(first, at=later), samples.confirmation(second, at=later)]
                 + [samples.confirmation(o, at=later) for o in others])

        def done(d):
            return all(any(x["decision"] != "pending" for x in d.get(k, ())) for k in
                       [*ids, *(o["document_id"] for o in others)])

        final = _decisions(broker.bootstrap, done, timeout=180)
        assert [d["decision"] for d in final[ids[0]] if d["decision"] != "pending"] == ["refund"]
        refused = {orjson.dumps(d) for d in final[ids[1]]}
        assert len(refused) == 1 and orjson.loads(refused.pop())["reasons"] == ["duplicate_receipt"]
        for other in others:
            assert {d["decision"] for d in final[other["document_id"]]} == {"pending", "refund"}
    finally:
        for worker in workers:
            if worker.poll() is None:
                stop_worker(worker)
        stop_broker_process(broker.process)
        assert survivor is None or survivor.poll() is not None
