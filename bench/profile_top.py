"""The top functions of a cProfile file, one line each (what the README's profiles list).

    .venv/bin/python -m cProfile -o /tmp/core.prof -m stream bench core --only kernel
    .venv/bin/python bench/profile_top.py /tmp/core.prof              # top 5 by own time
    .venv/bin/python bench/profile_top.py /tmp/core.prof --top 10 --sort cumulative

Own time (tottime) is where the interpreter spent its time; a compiled kernel shows as one line
(its Python entry point). Percentages are of the profile's total.
"""
from __future__ import annotations

import argparse
import pstats
import sys


def top(path: str, n: int = 5, sort: str = "tottime", skip_idle: bool = True) -> list[str]:
    stats = pstats.Stats(path)
    total = stats.total_tt or 1.0
    rows = []
    for (filename, line, name), (cc, nc, tt, ct, _) in stats.stats.items():
        if skip_idle and name in ("select", "poll", "epoll_wait", "<method 'poll' of 'select.epoll' objects>",
                                  "<method 'control' of 'select.kqueue' objects>", "sleep"):
            continue
        if skip_idle and ("select.epoll" in name or "run_forever" in name or "_run_once" in name):
            continue
        rows.append((tt if sort == "tottime" else ct, tt, ct, nc, f"{filename.split('site-packages/')[-1]}:{line}({name})"))
    rows.sort(reverse=True)
    out = [f"total {total:.2f} s (profiled)"]
    for _, tt, ct, nc, where in rows[:n]:
        out.append(f"{tt / total:6.1%} own {tt:7.2f} s  cum {ct:7.2f} s  {nc:>9} calls  {where}")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path")
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--sort", choices=("tottime", "cumulative"), default="tottime")
    parser.add_argument("--with-idle", action="store_true", help="keep the event loop's waits (select, epoll)")
    args = parser.parse_args(argv)
    print("\n".join(top(args.path, args.top, args.sort, not args.with_idle)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
