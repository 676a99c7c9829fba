"""Benchmarks: fspec's compute stage against idiomatic pandas and polars on a synthetic trades workload.

Run ``python -m benchmarks.bars --help``; ``pip install -e '.[bench]'`` installs polars.
"""
