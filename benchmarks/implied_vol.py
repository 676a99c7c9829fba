"""Implied volatilities per second per thread: fspec.options (numba "Let's Be Rational") on random contracts.

    python -m benchmarks.implied_vol --contracts 1M --runs 5

The contracts (seeded): times to expiry log-uniform from 5 minutes to 5 years, volatilities log-uniform from
5% to 200%, standardised moneyness ln(F/K)/(σ√T) uniform in [-3, 3], calls and puts half each, a 3% rate for
the discount factor; the prices are fspec's own Black-76 prices of those.

Each run is a fresh process (``NUMBA_NUM_THREADS=1``; the kernel is a plain loop on one thread anyway) that
loads the kernel from numba's cache with a call on a few contracts, then times one call on all of them, by
the wall clock and by the thread's CPU time (``time.thread_time``, which leaves out the time the thread waits
for a core on a loaded machine). A first process fills the cache and is not counted. The report gives the
median and the spread of the runs, the load average (``os.getloadavg()``) before and after, the worst
round-trip error among the contracts whose status is OK, and, if the ``lets-be-rational`` package is
installed, its pure-Python function's rate on a smaller sample. The command fails unless every contract is
OK and that error is at most 1e-9 (deep in the money it is limited by the time value being only the last
digits of the price).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FIVE_MINUTES = 5.0 / (365.0 * 24.0 * 60.0)

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from benchmarks.implied_vol import contracts
from fspec.options import black76
c = contracts(int(sys.argv[2]), int(sys.argv[3]))
black76.implied_volatility(c["price"][:4], c["F"][:4], c["K"][:4], c["T"][:4], c["is_call"][:4], c["df"][:4])
t0 = time.perf_counter()
c0 = time.thread_time()
sigma, status = black76.implied_volatility(c["price"], c["F"], c["K"], c["T"], c["is_call"], c["df"])
cpu = time.thread_time() - c0
seconds = time.perf_counter() - t0
ok = status == 0
err = float(abs(sigma[ok] / c["sigma"][ok] - 1.0).max()) if ok.any() else float("nan")
print(json.dumps({"seconds": seconds, "cpu": cpu, "ok": int(ok.sum()), "n": int(sigma.size), "max_rel_err": err}))
"""


def contracts(n: int, seed: int = 16) -> dict[str, np.ndarray]:
    """n random contracts and their Black-76 prices (see the module doc)."""
    from fspec.options import black76

    rng = np.random.default_rng(seed)
    T = np.exp(rng.uniform(np.log(FIVE_MINUTES), np.log(5.0), n))
    sigma = np.exp(rng.uniform(np.log(0.05), np.log(2.0), n))
    z = rng.uniform(-3.0, 3.0, n)
    F = rng.uniform(10.0, 5000.0, n)
    K = F * np.exp(-z * sigma * np.sqrt(T))
    is_call = rng.random(n) < 0.5
    df = np.exp(-0.03 * T)
    price = black76.price(F, K, T, sigma, is_call, df)
    return {"F": F, "K": K, "T": T, "sigma": sigma, "is_call": is_call, "df": df, "price": price}


def _run_child(n: int, seed: int) -> dict:
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(REPO), str(n), str(seed)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def oracle_rate(n: int, seed: int) -> float | None:
    """IVs per second of the lets-be-rational package's Python function, None if it is not installed."""
    try:
        from lets_be_rational import implied_volatility_from_a_transformed_rational_guess as python_iv
    except ImportError:
        return None
    c = contracts(n, seed)
    undiscounted = c["price"] / c["df"]
    t0 = time.perf_counter()
    for i in range(n):
        # It raises for prices out of range; the rate counts those calls too.
        with contextlib.suppress(Exception):
            python_iv(undiscounted[i], c["F"][i], c["K"][i], c["T"][i], 1.0 if c["is_call"][i] else -1.0)
    return n / (time.perf_counter() - t0)


def _count(text: str) -> int:
    text = text.strip().lower().replace("_", "").replace(",", "")
    for suffix, factor in (("k", 1_000), ("m", 1_000_000)):
        if text.endswith(suffix):
            return int(float(text[:-1]) * factor)
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contracts", default="1M", help="contracts per run (1M, 200k, ...)")
    parser.add_argument("--runs", type=int, default=5, help="timed fresh processes")
    parser.add_argument("--oracle-sample", default="20k", help="contracts for the Python package (0: skip)")
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args(argv)
    n = _count(args.contracts)

    load_before = os.getloadavg()
    _run_child(min(n, 1000), args.seed)  # fills numba's cache; not timed
    runs = [_run_child(n, args.seed) for _ in range(args.runs)]
    load_after = os.getloadavg()
    rates = [r["n"] / r["seconds"] for r in runs]
    cpu_rates = [r["n"] / r["cpu"] for r in runs]
    worst = max(r["max_rel_err"] for r in runs)
    if any(r["ok"] != r["n"] for r in runs) or not worst <= 1e-9:  # a fast wrong answer is no result
        raise SystemExit(f"implied volatilities wrong: {runs[0]['ok']} of {n} OK, worst round trip {worst:.2e}")

    print(f"implied volatilities, {n:,} contracts, {args.runs} fresh processes, one thread")
    print("| engine | clock | IV/s/thread (median) | min | max | contracts OK | max rel. round-trip error (OK) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    r0 = runs[0]
    for clock, values in (("wall", rates), ("thread CPU", cpu_rates)):
        print(
            f"| fspec.options (numba) | {clock} | {statistics.median(values):,.0f} | {min(values):,.0f} "
            f"| {max(values):,.0f} | {r0['ok']:,} of {r0['n']:,} | {worst:.2e} |"
        )
    sample = _count(args.oracle_sample)
    rate = oracle_rate(sample, args.seed) if sample else None
    if rate is not None:
        print(f"| lets-be-rational (Python), {sample:,} contracts | wall | {rate:,.0f} | | | | |")
        print(f"speed-up over the Python package (wall, medians): {statistics.median(rates) / rate:,.0f}x")
    print(
        "load average (1, 5, 15 min): before "
        + ", ".join(f"{v:.2f}" for v in load_before)
        + "; after "
        + ", ".join(f"{v:.2f}" for v in load_after)
        + f"; {os.cpu_count()} cores"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
