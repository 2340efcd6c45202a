"""Scale-out figures in one command: `bench e2e` with 1 worker on 4 partitions, 2 workers on 4, 2 on 8.

    .venv/bin/python bench/scale_out.py                      # the three runs, back to back, one table
    .venv/bin/python bench/scale_out.py --orders 200000 --configs 1x4,2x4,2x8,4x8 --json out.json

Each run is `stream.benchmarks.e2e.run` (what `customs-stream bench e2e` prints), unchanged. Around its
measured phases this script reads the CPU seconds (/proc/PID/stat utime + stime) of the processes the
benchmark started: the workers (`python -m stream worker`), the broker (Tansu) and the floor's relay.
So the table says, besides lines/s and the ratio to the transport floor, how many cores the workers
and the broker were busy, and the order lines per worker CPU-second: the per-core figure the
capacity plan (README) divides by.

The e2e module's `_pipeline_run` (called twice: warm-up, then the measured feed) and `_floor_run` are
wrapped, not changed; if they are renamed, the table falls back to the whole run's CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stream.benchmarks import e2e  # noqa: E402
from stream.benchmarks.soak import cpu_seconds  # noqa: E402


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(name))
    return tree


def _kind(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):
        return "gone"
    text = b" ".join(argv)
    if b"tansu" in argv[0] or b"broker --listener-url" in text:
        return "broker"
    if b"stream worker" in text or b"stream.benchmarks.soak" in text:
        return "worker"
    return "other"  # the floor's relay, multiprocessing's helpers


def cpu_by_kind() -> dict[str, float]:
    """CPU seconds so far of every descendant of this process, summed per kind (and this process)."""
    tree = _children()
    out = {"worker": 0.0, "broker": 0.0, "other": 0.0, "bench": cpu_seconds(os.getpid()) or 0.0}
    stack = list(tree.get(os.getpid(), ()))
    while stack:
        pid = stack.pop()
        stack.extend(tree.get(pid, ()))
        kind = _kind(pid)
        cpu = cpu_seconds(pid)
        if kind != "gone" and cpu is not None:
            out[kind] += cpu
    return out


class Timeline:
    """Per-process CPU every ``step`` seconds (a thread), to see when each worker was busy or waiting."""

    def __init__(self, step: float = 1.0) -> None:
        import threading

        self.step = step
        self.samples: list[tuple[float, dict[int, tuple[str, float]]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            tree, seen = _children(), {}
            stack = list(tree.get(os.getpid(), ()))
            while stack:
                pid = stack.pop()
                stack.extend(tree.get(pid, ()))
                cpu = cpu_seconds(pid)
                if cpu is not None:
                    seen[pid] = (_kind(pid), cpu)
            self.samples.append((time.monotonic(), seen))
            self._stop.wait(self.step)

    def __enter__(self) -> "Timeline":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def busy(self, start: float, end: float) -> dict[str, list[float]]:
        """Per process (kind:pid), the cores it used in each step between ``start`` and ``end``."""
        out: dict[str, list[float]] = {}
        window = [(t, s) for t, s in self.samples if start - self.step <= t <= end + self.step]
        for (t0, a), (t1, b) in zip(window, window[1:]):
            for pid, (kind, cpu) in b.items():
                if kind in ("worker", "broker") and pid in a:
                    out.setdefault(f"{kind}:{pid}", []).append(round((cpu - a[pid][1]) / (t1 - t0), 2))
        return out


class Phases:
    """Wraps the e2e module's phase functions and records the CPU each phase took, per kind."""

    def __init__(self) -> None:
        self.phases: list[tuple[str, float, dict[str, float]]] = []
        self.spans: list[tuple[str, float, float]] = []

    def wrap(self, name: str) -> None:
        original = getattr(e2e, name, None)
        if original is None:
            return

        async def wrapped(*args, **kwargs):
            before, started = cpu_by_kind(), time.monotonic()
            try:
                return await original(*args, **kwargs)
            finally:
                after = cpu_by_kind()
                self.phases.append((name, time.monotonic() - started, {k: after[k] - before[k] for k in after}))
                self.spans.append((name, started, time.monotonic()))

        setattr(e2e, name, wrapped)
        self.originals = getattr(self, "originals", {})
        self.originals[name] = original

    def restore(self) -> None:
        for name, original in getattr(self, "originals", {}).items():
            setattr(e2e, name, original)


def one(orders: int, workers: int, partitions: int, **kwargs) -> dict:
    phases = Phases()
    phases.wrap("_pipeline_run")
    phases.wrap("_floor_run")
    try:
        with Timeline() as line:
            result = e2e.run(orders=orders, workers=workers, partitions=partitions, **kwargs)
    finally:
        phases.restore()
    pipelines = [p for p in phases.phases if p[0] == "_pipeline_run"]
    floors = [p for p in phases.phases if p[0] == "_floor_run"]
    pipe = result["pipeline"]
    row = {"workers": workers, "partitions": partitions, "order_lines": pipe["order_lines"],
           "lines_per_second": pipe["lines_per_second"], "floor_lines_per_second": (result.get("transport_floor") or {}).get("lines_per_second"),
           "ratio": result.get("ratio"), "latency_p50_ms": pipe["latency_p50_ms"], "seconds": pipe["seconds"],
           "duplicate_declarations": pipe["duplicate_declarations"]}
    if len(pipelines) >= 2:  # warm-up, then the measured feed
        _, wall, cpu = pipelines[-1]
        row.update(phase_seconds=round(wall, 2), worker_cpu_s=round(cpu["worker"], 2), broker_cpu_s=round(cpu["broker"], 2),
                   bench_cpu_s=round(cpu["bench"], 2),
                   worker_cores=round(cpu["worker"] / wall, 2), broker_cores=round(cpu["broker"] / wall, 2),
                   lines_per_worker_cpu_s=round(pipe["order_lines"] / cpu["worker"]) if cpu["worker"] else None,
                   broker_cpu_s_per_100k_lines=round(cpu["broker"] / pipe["order_lines"] * 1e5, 2))
    if floors:
        _, wall, cpu = floors[-1]
        row.update(floor_broker_cpu_s=round(cpu["broker"], 2), floor_relay_cpu_s=round(cpu["other"], 2))
    measured = [span for span in phases.spans if span[0] == "_pipeline_run"]
    if len(measured) >= 2:
        row["busy_per_second"] = line.busy(measured[-1][1], measured[-1][2])
    row["raw"] = result
    return row


COLUMNS = (("workers", "workers"), ("partitions", "partitions"), ("lines_per_second", "lines/s"),
           ("floor_lines_per_second", "floor lines/s"), ("ratio", "ratio"), ("latency_p50_ms", "p50 ms"),
           ("worker_cpu_s", "worker CPU s"), ("broker_cpu_s", "broker CPU s"), ("bench_cpu_s", "producer+consumer CPU s"),
           ("worker_cores", "worker cores"), ("broker_cores", "broker cores"),
           ("lines_per_worker_cpu_s", "lines / worker CPU s"), ("broker_cpu_s_per_100k_lines", "broker CPU s / 100k lines"))


def table(rows: list[dict]) -> str:
    head = "| " + " | ".join(label for _, label in COLUMNS) + " |"
    rule = "|" + "---|" * len(COLUMNS)
    body = ["| " + " | ".join(str(r.get(key, "")) for key, _ in COLUMNS) + " |" for r in rows]
    return "\n".join([head, rule, *body])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--configs", default="1x4,2x4,2x8", help="WORKERSxPARTITIONS, comma-separated")
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--log-dir", default=None, help="keep each run's broker and worker logs in DIR/WxP/")
    parser.add_argument("--timeline", action="store_true", help="print each process's cores used per second")
    parser.add_argument("--json", default=None, help="also write every run's rows (and e2e's raw output) here")
    args = parser.parse_args(argv)
    rows = []
    for config in args.configs.split(","):
        workers, partitions = (int(x) for x in config.lower().split("x"))
        started = time.monotonic()
        extra = {}
        if args.log_dir:
            extra["log_dir"] = str(Path(args.log_dir) / f"{workers}x{partitions}")
            Path(extra["log_dir"]).mkdir(parents=True, exist_ok=True)
        row = one(args.orders, workers, partitions, page_size=args.page_size, seed=args.seed, **extra)
        print(f"# {workers} worker(s), {partitions} partitions: {row['lines_per_second']} lines/s "
              f"({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
        rows.append(row)
    print(f"{args.orders} orders per run, {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f} at the end")
    print(table(rows))
    if args.timeline:
        for row in rows:
            print(f"cores used each second of the measured feed, {row['workers']} worker(s) x {row['partitions']} partitions:")
            for name, series in row.get("busy_per_second", {}).items():
                print(f"  {name:>14}: " + " ".join(f"{x:.2f}" for x in series))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
