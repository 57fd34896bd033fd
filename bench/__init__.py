"""Benchmarks of the engine manager, each measured against the physical limit of its job.

``python -m bench [NAME ...] [--size tiny|small|large]`` (or ``make bench SIZE=…``) runs each
benchmark in a process of its own, with a throw-away data folder and database, prints a table and
writes ``bench/results/<name>.json``. ``docs/benchmarks.md`` explains every figure and its limit.

This package imports nothing of Django here: each benchmark module sets up its own environment
before the settings load.
"""

BENCHMARKS = ("listing", "heartbeats", "launch", "kill", "sweep")
