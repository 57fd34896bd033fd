"""``python -m bench [NAME ...] [--size tiny|small|large] [--out DIR]``: run the benchmarks.

Each benchmark runs in a process of its own (its own throw-away data folder and database, its own
Django), prints its table and writes ``<out>/<name>.json``; then every ratio is summed up in
``<out>/summary.json``. The size defaults to ``$SIZE``, else small.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from bench import BENCHMARKS
from bench.common import BASE_DIR, RESULTS_DIR, SIZES


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"benchmarks to run: {', '.join(BENCHMARKS)} (all)")
    parser.add_argument("--size", choices=SIZES, default=os.environ.get("SIZE") or "small")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("BENCH_RESULTS_DIR") or RESULTS_DIR))
    args = parser.parse_args()
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    names = args.names or list(BENCHMARKS)
    out = args.out.resolve()

    failed = []
    for name in names:
        command = [sys.executable, "-m", f"bench.{name}", "--size", args.size, "--out", str(out)]
        if subprocess.call(command, cwd=BASE_DIR) != 0:
            failed.append(name)

    summary = []
    machine = None
    for name in names:
        path = out / f"{name}.json"
        if name in failed or not path.exists():
            continue
        document = json.loads(path.read_text())
        machine = machine or document["machine"]
        summary += [
            {"benchmark": name, "figure": figure["name"], "ratio": figure["ratio"], "limit": figure["limit_what"]}
            for figure in document["figures"]
        ]
    (out / "summary.json").write_text(
        json.dumps({"size": args.size, "machine": machine, "figures": summary}, indent=2) + "\n"
    )
    sys.stdout.write(f"\n== summary ({args.size}): ours ÷ limit, 1.00× is the limit\n")
    for item in summary:
        ratio = "-" if item["ratio"] is None else f"{item['ratio']:.2f}×"
        sys.stdout.write(f"  {ratio:>9}  {item['benchmark']}: {item['figure']}\n")
    if failed:
        sys.stdout.write(f"FAILED: {', '.join(failed)}\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
