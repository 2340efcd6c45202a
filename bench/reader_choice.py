"""Which parser for the feed reader (issue 12): candidates side by side on the same feed, same run.

    .venv/bin/python bench/reader_choice.py [--orders 20000] [--repeat 5]

Each candidate turns the same `assessment-request/1` JSON lines (the benchmark feed of `customs-stream
bench core`) and the same `page/1` pages of `order/1` (1000 orders a page, the load generator's) into
validated documents. Printed: the median wall time and the median CPU time of this process (the machine
is shared: CPU time is the steadier figure) over ``--repeat`` runs, per document, and the ratio to
``orjson.loads`` alone.

- `orjson.loads alone`: parsing, no validation (the floor every candidate pays in some form);
- `pure path`: orjson, the colon-count duplicate-key check, the Python validators (today's path, the twin);
- `reader (chosen)`: stream/contracts/reader.py: msgspec typed decode + the compiled scan and patterns,
  the pure path for what it cannot vouch for (the same answers as the pure path);
- `msgspec Struct, patterns in Meta`: msgspec alone, every pattern as a Meta(pattern=...) regex (it calls
  Python's `re` per field), no duplicate-key check (it keeps the last value), its own error texts;
- `msgspec, untyped`: decoding to plain dicts, no validation;
- `pysimdjson + Python validators`: simdjson's parser, the documents as dicts, then the validators;
- `pysimdjson parse alone` (both only when pysimdjson is installed: it is not a dependency).
"""

import argparse
import gc
import statistics
import time
from typing import Annotated, Literal, Optional, Union

import orjson

from stream.benchmarks.samples import assessment_requests
from stream.contracts import reader
from stream.contracts.validate import MAX_LINES, MAX_QTY, validate_document, validate_request


def msgspec_struct_decoder():
    import msgspec
    from msgspec import UNSET, Meta, Struct, UnsetType

    ID = Annotated[str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/#-]{0,127}\Z")]
    MONEY = Annotated[str, Meta(pattern=r"^(?:0|[1-9][0-9]{0,8})(?:\.[0-9]{1,6})?\Z")]
    MEASURE = Annotated[str, Meta(pattern=r"^(?:0|[1-9][0-9]{0,4})(?:\.[0-9]{1,6})?\Z")]
    STAMP = Annotated[str, Meta(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
                                        r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})\Z")]

    class Buyer(Struct):
        iin: Annotated[str, Meta(pattern=r"^[0-9]{12}\Z")]
        name: Annotated[str, Meta(min_length=1, max_length=200)]

    class Line(Struct):
        sku: ID
        qty: Annotated[int, Meta(ge=1, le=MAX_QTY)]
        unit_price: MONEY
        currency: Annotated[str, Meta(pattern=r"^[A-Z]{3}\Z")]
        description: Annotated[str, Meta(min_length=1, max_length=1000)]
        origin: Annotated[str, Meta(pattern=r"^[A-Z]{2}\Z")]
        unit_weight_kg: MEASURE
        hs_code: Union[Optional[Annotated[str, Meta(max_length=32)]], UnsetType] = UNSET
        unit_volume_l: Union[MEASURE, UnsetType] = UNSET
        category: Union[Annotated[str, Meta(min_length=1, max_length=100)], UnsetType] = UNSET

    class Request(Struct):
        schema: Literal["assessment-request/1"]
        order_id: ID
        ordered_at: STAMP
        flow: Literal["parcel", "warehouse"]
        lines: Annotated[list[Line], Meta(min_length=1, max_length=MAX_LINES)]
        marketplace: Union[Annotated[str, Meta(min_length=1, max_length=64)], UnsetType] = UNSET
        declared_at: Union[Annotated[str, Meta(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")], UnsetType] = UNSET
        buyer: Union[Buyer, UnsetType] = UNSET

    return msgspec.json.Decoder(Request).decode


def measure(fn, repeat: int) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
        gc.enable()
    return statistics.median(walls), statistics.median(cpus)


def candidates(lines: list[bytes], schema: str, validate):
    import msgspec

    try:  # measured when installed (pip install pysimdjson); not a dependency of the project
        import simdjson
    except ImportError:
        simdjson = None
    parser = simdjson.Parser() if simdjson is not None else None

    def simdjson_parse_alone():
        for raw in lines:  # each parsed document is freed before the next parse (the parser is reused)
            parser.parse(raw).at_pointer("/schema")

    def simdjson_validated():
        for raw in lines:
            doc = parser.parse(raw).as_dict()
            for item in (doc["items"] if doc.get("schema") == "page/1" else [doc]):
                validate(item)
            del doc

    untyped = msgspec.json.Decoder().decode
    out = {
        "orjson.loads alone": lambda: [orjson.loads(raw) for raw in lines],
        "pure path (orjson + Python validators)": lambda: [reader.read_pure(raw, validate) for raw in lines],
        "reader (chosen: msgspec + compiled checks)": lambda: [reader.read_message(raw, schema) for raw in lines],
        "msgspec, untyped": lambda: [untyped(raw) for raw in lines],
    }
    if parser is not None:
        out["pysimdjson + Python validators"] = simdjson_validated
        out["pysimdjson parse alone"] = simdjson_parse_alone
    if schema == "assessment-request/1":
        struct = msgspec_struct_decoder()
        out["msgspec Struct, patterns in Meta"] = lambda: [struct(raw) for raw in lines]
    return out


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--orders", type=int, default=20_000)
    options.add_argument("--repeat", type=int, default=5)
    args = options.parse_args()
    print(f"reader backend: {reader.backend()}")

    requests = [orjson.dumps(doc) for doc in assessment_requests(args.orders, seed=1)]
    from stream.loadgen import FeedConfig, generate

    pages = [page.value for page in generate(FeedConfig(orders=args.orders, seed=1, page_size=1000))
             if b'"order/1"' in page.value[:400] and b'"goods-manifest/1"' not in page.value]
    feeds = [("assessment-request/1 lines", requests, "assessment-request/1", validate_request, len(requests)),
             ("page/1 of order/1", pages, "order/1", validate_document,
              sum(len(orjson.loads(raw)["items"]) for raw in pages))]
    for title, lines, schema, validate, documents in feeds:
        # the fast path must agree with the pure path on this feed before it is timed
        assert [reader.read_message(raw, schema) for raw in lines] == [reader.read_pure(raw, validate) for raw in lines]
        size = sum(map(len, lines))
        print(f"\n{title}: {documents} documents in {len(lines)} messages, {size / 1e6:.1f} MB; "
              f"median of {args.repeat}")
        print(f"{'candidate':45s} {'wall ms':>9s} {'cpu ms':>9s} {'us/doc':>7s} {'x orjson':>8s}")
        floor = None
        for name, fn in candidates(lines, schema, validate).items():
            wall, cpu = measure(fn, args.repeat)
            floor = floor or cpu
            print(f"{name:45s} {wall * 1e3:9.1f} {cpu * 1e3:9.1f} {cpu / documents * 1e6:7.2f} {cpu / floor:8.2f}")


if __name__ == "__main__":
    main()
