"""How ``panorama index`` scales: records/s and peak memory of whole runs at growing sizes.

    python bench/index_scale.py [--sizes 100000,462000]

Each size builds the demo world (three SQLite shops and the CRM, served in this process, about
2.2 source records per customer), then runs a whole index in a child process, exactly as
``identity_quality.py`` does, and prints its figures. The goal of the identity issue: a million
source records in minutes, with memory bounded by the crosswalk rather than by the sources, so
the memory per record must fall as the size grows. Quality is measured by
``identity_quality.py``; this only times and weighs.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from pathlib import Path

from identity_quality import bench_environ, run_index  # type: ignore[import-not-found]

from gateway.crm_server import create_crm_app
from gateway.crm_server.background import serve_in_background
from gateway.demo.world import build_world

#: The goal: this many source records...
GOAL_RECORDS = 1_000_000
#: ...indexed within this many seconds ("minutes"), with at most this peak RSS.
GOAL_SECONDS = 15 * 60
GOAL_PEAK_MB = 1024


def scale(customers: int, workdir: Path) -> tuple[str, bool]:
    started = time.perf_counter()
    world = build_world(workdir, seed=7, customers=customers,
                        crm_url="${env:PANORAMA_BENCH_CRM_URL}")
    built = time.perf_counter() - started
    token = secrets.token_urlsafe(16)
    with serve_in_background(create_crm_app(world.crm_seed, token=token)) as crm:
        environ = bench_environ(workdir, PANORAMA_DEMO_CRM_TOKEN=token,
                                PANORAMA_BENCH_CRM_URL=crm.url)
        stats = run_index(world.config_path, environ, isolate=True)
    rate = stats.records / stats.index_seconds
    grown = (stats.rss_peak_kb - stats.rss_before_kb) / 1024
    line = (f"{customers:>9,} customers  {stats.records:>10,} records  index {stats.index_seconds:>7.1f} s"
            f"  {rate:>7,.0f} rec/s  peak RSS {stats.rss_peak_kb / 1024:>7,.1f} MB"
            f" (+{grown:,.1f} MB = {grown * 1024 / stats.records:.2f} KB/record)"
            f"  [world built in {built:.0f} s]")
    # Below the goal's size only memory is judged (it must stay under the bound as well).
    met = stats.rss_peak_kb / 1024 <= GOAL_PEAK_MB and (
        stats.records < GOAL_RECORDS or stats.index_seconds <= GOAL_SECONDS)
    return line, met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,462000",
                        help="demo world sizes in shop customers (default: %(default)s, just over "
                             "1M source records at the largest)")
    args = parser.parse_args(argv)
    print(f"goal at >= {GOAL_RECORDS:,} records: index within {GOAL_SECONDS // 60} minutes and "
          f"{GOAL_PEAK_MB:,} MB peak RSS", flush=True)
    passed = True
    for size in (int(s) for s in args.sizes.split(",") if s.strip()):
        with tempfile.TemporaryDirectory(prefix="panorama-scale-") as tmp:
            line, met = scale(size, Path(tmp))
        passed &= met
        print(line + ("" if met else "  GOAL MISSED"), flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
