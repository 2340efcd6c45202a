"""The warehouse domain in process: `WarehouseDomain.handle` over load-generator pages, no broker.

    .venv/bin/python bench/warehouse_page.py [--orders 100000] [--repeat 5] [--profile /tmp/page.prof]

Each run feeds the same deterministic feed (stream/loadgen.py, as `bench e2e` makes it) to a fresh
state, one partition per warehouse, applying every body as the runtime does; the real assessor and
classifier price and declare. Prints, per run and as medians, the order pages' cost in us per order
line and order lines/s (manifest pages are fed too but timed apart; they are a small share), in
CPU time unless --wall is given. Compare two checkouts in the same run, back to back, each on its
own code: ``PYTHONPATH=<checkout> .venv/bin/python <checkout>/bench/warehouse_page.py``.
"""
from __future__ import annotations

import argparse
import cProfile
import statistics
import time

from stream import settings
from stream.loadgen import FeedConfig, generate
from stream.runtime.topics import ORDERS
from stream.warehouse.agents import domain


def feed(orders: int, seed: int = 7) -> list:
    cfg = FeedConfig(orders=orders, page_size=1000, seed=seed, skus=5000, wave_orders=max(orders // 4, 1000),
                     unclassified_rate=0.03)
    return list(generate(cfg))


def run_once(dom, pages, clock=time.process_time) -> tuple[float, float, int, int]:
    """(seconds in order pages, seconds in manifest pages, order lines, declarations). The clock is
    the process's CPU time by default: on a machine shared with other work, wall time measures the
    neighbours too (``--wall`` for it)."""
    states: dict[bytes, object] = {}
    order_seconds = manifest_seconds = 0.0
    lines = declared = 0
    now = 1_800_000_000.0
    for page in pages:
        state = states.get(page.key)
        if state is None:
            state = states[page.key] = dom.new_state(len(states))
        started = clock()
        effects = dom.handle(state, page.topic, page.key, page.value, now)
        if effects.body is not None:
            state.apply(effects.body)
        spent = clock() - started
        if page.topic == ORDERS:
            order_seconds += spent
            lines += page.lines
            declared += len(effects.outputs.get("declarations", ()))
        else:
            manifest_seconds += spent
        now += 0.001
    return order_seconds, manifest_seconds, lines, declared


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", default=None, help="write a cProfile of one more run to this file")
    parser.add_argument("--wall", action="store_true", help="time with the wall clock, not CPU time")
    args = parser.parse_args()
    pages = feed(args.orders)
    dom = domain(settings.load())
    run_once(dom, feed(500, seed=8))  # warm: the classifier and rules loaded
    per_line, rates = [], []
    for n in range(args.repeat):
        order_s, manifest_s, lines, declared = run_once(dom, pages, time.perf_counter if args.wall else time.process_time)
        per_line.append(order_s / lines * 1e6)
        rates.append(lines / order_s)
        print(f"run {n}: {lines} order lines, {declared} declarations: {order_s:.3f} s in order pages "
              f"({per_line[-1]:.2f} us/line, {rates[-1]:,.0f} lines/s), {manifest_s:.3f} s in manifest pages")
    clock = "wall" if args.wall else "CPU"
    print(f"median ({clock} time): {statistics.median(per_line):.2f} us/line, "
          f"{statistics.median(rates):,.0f} order lines/s")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        run_once(dom, pages)
        profiler.disable()
        profiler.dump_stats(args.profile)
        print(f"profile written to {args.profile}")


if __name__ == "__main__":
    main()
