"""A plain numpy/pandas reference evaluator of fspec features, independent of the generated kernels.

It reuses only the compiler's front end (``fspec.compiler.build.check``: YAML -> project model ->
resolved formula trees in dependency order). Everything after that is done again here, the slow and
obvious way: data is loaded with ``pd.read_parquet``, tick expressions are numpy arrays over a session's
ticks, reducers are pandas ``groupby`` on the bar index, and bar operators work on the bars of all
sessions concatenated. Nothing in ``fspec.runtime`` (kernels, bar operators, evaluator, loader) is used.

Data (docs/semantics.md, "Sessions and bars" and "Conventions (edge cases)")
    * Times become UTC: tz-aware columns are converted, integer epochs use the source's ``unit``, naive
      times are read in the source's ``timezone`` (default UTC).
    * The source's row filter is a formula over the file's columns with elementwise operators; a row is
      kept where its value is nonzero (so a NaN result keeps the row, as NaN is "true" everywhere).
    * A bar source stamped at its start is known at ``stamp + width``; that known time is its time.
    * Rows are sorted by time, stably (ties keep the file order).
    * ``asof`` columns: ``pd.merge_asof(direction="backward", allow_exact_matches=True)`` on known time
      against the other source (loaded the same way, before session clipping): the last row known at or
      before the tick, NaN before the first one.
    * Session clip: ticks with ``open <= t < close`` of the day's session, open and close taken as wall
      clock times in the session's time zone (so DST is honoured). Bars are ``[t, t + interval)``; a tick
      belongs to bar ``(t - open) // interval``. Every bar of the session exists.
    * Session days are the dates for which the instrument has files; bar operators see the bars of all
      those sessions concatenated (unlimited warm-up), session-local ones restart at each session.

Elementwise operators (tick rows or bars, numpy, IEEE arithmetic under ``np.errstate(all="ignore")``)
    add sub mul div pow neg exp abs   IEEE: NaN in -> NaN out; x/0 = +-inf, 0/0 = NaN. (IEEE also says
                                      NaN ** 0 = 1 and 1 ** NaN = 1; the registry's "NaN in -> NaN out"
                                      for pow does not mention these two, the tests avoid them.)
    log                               log(0) = -inf, log(<0) = NaN
    sqrt                              sqrt(<0) = NaN
    sign                              -1, 0, 1; NaN stays NaN
    lt le gt ge eq                    1.0 / 0.0; any comparison with NaN is 0.0
    ne                                1.0 / 0.0; NaN != anything is 1.0
    and_ or_                          1.0 / 0.0, nonzero is true, NaN counts as true
    not_                              1.0 where x == 0, else 0.0 (not NaN is 0.0)
    where(cond, x, y)                 x where cond != 0 (a NaN cond counts as true), else y
    clip(x, lo, hi)                   min(max(x, lo), hi); NaN in any of x, lo, hi -> NaN (registry:
                                      "NaN in -> NaN out"). lo > hi is not defined by the registry and is
                                      not tested.
    min2 max2                         NaN if either input is NaN

Tick operators (within one session's ticks of one instrument, in time order)
    lag(x, k)                         x shifted k rows down; NaN for the session's first k ticks
    diff(x, k)                        x - lag(x, k)
    tick_rule(p)                      sign of the last non-zero change between consecutive non-NaN prices
                                      of the session (pandas: sign of diff over the non-NaN prices, zeros
                                      dropped, forward-filled); 0 before the first change; a row with a
                                      NaN price keeps the current sign

Reducers (ticks of one bar -> one value; ``groupby(bar)`` then reindexed onto the session grid)
    sum                               NaN skipped; empty (or all-NaN) bar -> 0
    count                             number of non-NaN values; empty bar -> 0
    mean, min, max                    NaN skipped; empty bar -> NaN
    first, last                       first / last non-NaN value; empty bar -> NaN
    std                               ddof = 1 over the non-NaN values; fewer than 2 -> NaN
    bipower                           drop NaN values, then sum |x_i| * |x_(i-1)| over consecutive pairs of
                                      the remaining values inside the bar; fewer than 2 values -> 0
    wmean(x, w)                       rows where x or w is NaN are dropped; sum(x*w) / sum(w); empty bar or
                                      sum(w) == 0 -> NaN

Bar operators (over the bars of all sessions concatenated; ``session`` is the session number of a bar)
    lag(x, k), diff(x, k)             shift across sessions (warm-up); NaN where no bar k back exists
    rolling_sum/mean/std/min/max(x,n) the window of the last n bars (across sessions); NaN until n bars
                                      exist and if any value in the window is NaN; std ddof = 1; computed
                                      exactly per window with numpy (sliding windows, two-pass std)
    rolling_corr(x, y, n)             Pearson correlation over the window; NaN until n bars exist, if any
                                      NaN is in either window, or if either window is constant (all its
                                      values equal)
    ewm_mean(x, span)                 per session, ``ewm(alpha=2/(span+1), adjust=False, ignore_na=True)``:
                                      starts at the session's first non-NaN value, NaN rows carry the mean;
                                      with session=false (ewm_std, rma too) over all sessions as one
    ffill(x)                          per session forward fill; NaN until the session's first value
    session_cumsum(x)                 per session cumulative sum, NaN counted as 0
    lead(x, k)                        per session shift k bars up; NaN for the session's last k bars

Constants: pi; interval_seconds; bars_per_session = session seconds // interval; periods_per_year =
trading_days_per_year * session seconds / interval. Instrument parameters come from the project.
Column names: ``{feature}_{interval}s_{instrument}``, or ``{feature}_{interval}s`` for cross-asset features.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from fspec.compiler import ir
from fspec.compiler.build import check
from fspec.compiler.formula import Call, Name, Node, Num, parse
from fspec.operators import REGISTRY

Key = tuple[str, str | None]


class ReferenceError(Exception):
    """The reference cannot give a defined value for this formula."""


# ---- elementwise ------------------------------------------------------------------------------------


def _f(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _b(mask: Any) -> np.ndarray:
    return np.where(mask, 1.0, 0.0)


def _clip(x: Any, lo: Any, hi: Any) -> np.ndarray:
    x, lo, hi = _f(x), _f(lo), _f(hi)
    out = np.maximum(np.minimum(x, hi), lo)  # lo wins when lo > hi, as the registry documents
    return np.where(np.isnan(x) | np.isnan(lo) | np.isnan(hi), np.nan, out)


def _ieee_pow(x: Any, y: Any) -> np.ndarray:
    """IEEE pow elementwise (math.pow), avoiding numpy's sqrt shortcut for a scalar 0.5 exponent, which gives
    NaN for (-inf) ** 0.5 where IEEE pow gives +inf."""
    xb, yb = np.broadcast_arrays(_f(x), _f(y))
    out = np.empty(xb.shape)
    for i, (a, b) in enumerate(zip(xb.ravel().tolist(), yb.ravel().tolist(), strict=True)):
        try:
            out.flat[i] = math.pow(a, b)
        except ValueError:  # negative base, non-integer exponent
            out.flat[i] = math.nan
        except OverflowError:
            out.flat[i] = math.copysign(math.inf, a) if b == int(b) and int(b) % 2 else math.inf
    return out


def _pick(fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], np.ndarray]:
    def op(x: Any, y: Any) -> np.ndarray:
        x, y = _f(x), _f(y)
        return np.where(np.isnan(x) | np.isnan(y), np.nan, fn(x, y))

    return op


ELEMENTWISE: dict[str, Callable[..., Any]] = {
    "add": lambda x, y: _f(x) + _f(y),
    "sub": lambda x, y: _f(x) - _f(y),
    "mul": lambda x, y: _f(x) * _f(y),
    "div": lambda x, y: _f(x) / _f(y),
    "pow": _ieee_pow,
    "lt": lambda x, y: _b(_f(x) < _f(y)),
    "le": lambda x, y: _b(_f(x) <= _f(y)),
    "gt": lambda x, y: _b(_f(x) > _f(y)),
    "ge": lambda x, y: _b(_f(x) >= _f(y)),
    "eq": lambda x, y: _b(_f(x) == _f(y)),
    "ne": lambda x, y: _b(_f(x) != _f(y)),
    "and_": lambda x, y: _b((_f(x) != 0) & (_f(y) != 0)),
    "or_": lambda x, y: _b((_f(x) != 0) | (_f(y) != 0)),
    "not_": lambda x: _b(_f(x) == 0),
    "neg": lambda x: -_f(x),
    "log": lambda x: np.log(_f(x)),
    "exp": lambda x: np.exp(_f(x)),
    "sqrt": lambda x: np.sqrt(_f(x)),
    "abs": lambda x: np.abs(_f(x)),
    "sign": lambda x: np.sign(_f(x)),
    "where": lambda c, x, y: np.where(_f(c) != 0, _f(x), _f(y)),
    "clip": _clip,
    "min2": _pick(np.minimum),
    "max2": _pick(np.maximum),
}


# ---- tick operators -----------------------------------------------------------------------------------


def shift_down(x: np.ndarray, k: int) -> np.ndarray:
    """``x`` moved ``k`` rows later; the first ``k`` rows are NaN."""
    out = np.full(x.shape[0], np.nan)
    if k < x.shape[0]:
        out[k:] = x[: x.shape[0] - k]
    return out


def tick_rule(price: np.ndarray) -> np.ndarray:
    """Sign of the last non-zero change of the non-NaN prices; 0 before the first change."""
    p = pd.Series(price)
    valid = p.dropna()
    sign = np.sign(valid.diff()).replace(0.0, np.nan).ffill()
    return sign.reindex(p.index).ffill().fillna(0.0).to_numpy()


def vpin(price: np.ndarray, size: np.ndarray, bucket: float, n: int) -> np.ndarray:
    """VPIN after each tick, from an explicit list of completed equal-volume buckets.

    A trade fills the open bucket and spills into new ones at its price (its rest after closing the open one
    fills floor(rest / bucket) whole buckets with dP = 0); each completed bucket records its
    close-to-close price change dP (the first from the session's first usable trade); with sigma the sample
    std of the last n changes, its imbalance is |2 * Phi(dP / sigma) - 1| (0 with fewer than 2 changes or
    sigma = 0); VPIN is the mean imbalance of the last n buckets, NaN before n buckets exist.
    """
    normal = NormalDist()
    out = np.full(price.shape[0], np.nan)
    changes: list[float] = []  # of the last buckets (at least the last n)
    imbalances: list[float] = []
    completed = 0
    fill, last_close, current = 0.0, None, np.nan

    def complete(change: float) -> None:
        nonlocal completed
        changes.append(change)
        window = changes[-n:]
        sigma = float(np.std(window, ddof=1)) if len(window) >= 2 else 0.0
        imbalances.append(0.0 if sigma == 0.0 else abs(2 * normal.cdf(change / sigma) - 1))
        completed += 1

    for i, (p, v) in enumerate(zip(price.tolist(), size.tolist(), strict=True)):
        if p == p and 0 < v < math.inf and bucket > 0:
            last_close = p if last_close is None else last_close
            if v < bucket - fill:
                fill += v
            else:
                complete(p - last_close)
                last_close = p
                rest = v - (bucket - fill)
                whole = np.floor(rest / bucket)
                for _ in range(int(min(whole, n))):  # the trade's own buckets: dP = 0 (only the last n matter)
                    complete(0.0)
                completed += int(min(whole, 1e18)) - int(min(whole, n))
                fill = max(rest - whole * bucket, 0.0)
                if completed >= n:
                    current = float(np.mean(imbalances[-n:]))
        out[i] = current
    return out


# ---- reducers -----------------------------------------------------------------------------------------


def _grid(result: pd.Series, n_bars: int, empty: float) -> np.ndarray:
    return result.reindex(range(n_bars), fill_value=empty).to_numpy(dtype=np.float64)


def _grouped(x: np.ndarray, bars: np.ndarray) -> Any:
    return pd.Series(x, dtype=np.float64).groupby(bars)


def _bipower(x: np.ndarray, bars: np.ndarray, n: int) -> np.ndarray:
    keep = ~np.isnan(x)
    a = pd.Series(np.abs(x[keep]))
    b = bars[keep]
    pairs = a * a.groupby(b).shift(1)  # previous non-NaN value inside the same bar
    return _grid(pairs.groupby(b).sum(), n, 0.0)


def _wmean(x: np.ndarray, w: np.ndarray, bars: np.ndarray, n: int) -> np.ndarray:
    keep = ~np.isnan(x) & ~np.isnan(w)
    num = _grouped(x[keep] * w[keep], bars[keep]).sum(skipna=False)
    den = _grouped(w[keep], bars[keep]).sum()
    return _grid((num / den).where(den != 0.0), n, np.nan)


REDUCERS: dict[str, Callable[..., np.ndarray]] = {
    "sum": lambda x, bars, n: _grid(_grouped(x, bars).sum(), n, 0.0),
    "count": lambda x, bars, n: _grid(_grouped(x, bars).count(), n, 0.0),
    "mean": lambda x, bars, n: _grid(_grouped(x, bars).mean(), n, np.nan),
    "first": lambda x, bars, n: _grid(_grouped(x, bars).first(), n, np.nan),
    "last": lambda x, bars, n: _grid(_grouped(x, bars).last(), n, np.nan),
    "min": lambda x, bars, n: _grid(_grouped(x, bars).min(), n, np.nan),
    "max": lambda x, bars, n: _grid(_grouped(x, bars).max(), n, np.nan),
    "std": lambda x, bars, n: _grid(_grouped(x, bars).std(ddof=1), n, np.nan),
    "bipower": _bipower,
    "wmean": _wmean,
}


# ---- bar operators ------------------------------------------------------------------------------------


def _windows(x: np.ndarray, n: int, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``fn`` over each window of the last ``n`` bars (rows of a 2-d array); NaN until n bars exist and
    where the window holds a NaN."""
    out = np.full(x.shape[0], np.nan)
    if x.shape[0] >= n:
        w = sliding_window_view(x, n)
        value = fn(w)
        out[n - 1 :] = np.where(np.isnan(w).any(axis=1), np.nan, value)
    return out


def _rolling_corr(x: np.ndarray, y: np.ndarray, n: int) -> np.ndarray:
    out = np.full(x.shape[0], np.nan)
    if x.shape[0] < n:
        return out
    wx, wy = sliding_window_view(x, n), sliding_window_view(y, n)
    dx = wx - wx.mean(axis=1, keepdims=True)
    dy = wy - wy.mean(axis=1, keepdims=True)
    corr = (dx * dy).sum(axis=1) / np.sqrt((dx * dx).sum(axis=1) * (dy * dy).sum(axis=1))
    undefined = (
        np.isnan(wx).any(axis=1)
        | np.isnan(wy).any(axis=1)
        | (wx == wx[:, :1]).all(axis=1)  # a constant window has no correlation
        | (wy == wy[:, :1]).all(axis=1)
    )
    out[n - 1 :] = np.where(undefined, np.nan, corr)
    return out


def _per_session(x: np.ndarray, session: np.ndarray, fn: Callable[[pd.Series], pd.Series]) -> np.ndarray:
    return pd.Series(x).groupby(session, group_keys=False).apply(fn).to_numpy(dtype=np.float64)


def _ewm(x: np.ndarray, span: float, session: np.ndarray) -> np.ndarray:
    """pandas' ``ewm(adjust=False, ignore_na=True)`` recursion m = (1 - a) m + a x, written out because pandas
    turns an infinite input into NaN, where the registry documents plain IEEE arithmetic (inf stays inf)."""
    alpha = 2.0 / (span + 1.0)
    out = np.full(x.shape[0], np.nan)
    for day in np.unique(session):
        mean = np.nan
        for i in np.flatnonzero(session == day):
            if not np.isnan(x[i]):
                with np.errstate(all="ignore"):
                    mean = x[i] if np.isnan(mean) else (1.0 - alpha) * mean + alpha * x[i]
            out[i] = mean
    return out


BAR_OPS: dict[str, Callable[..., np.ndarray]] = {
    "lag": lambda x, session, k: shift_down(x, int(k)),
    "diff": lambda x, session, k: x - shift_down(x, int(k)),
    "rolling_sum": lambda x, session, n: _windows(x, int(n), lambda w: w.sum(axis=1)),
    "rolling_mean": lambda x, session, n: _windows(x, int(n), lambda w: w.mean(axis=1)),
    "rolling_std": lambda x, session, n: _windows(x, int(n), lambda w: w.std(axis=1, ddof=1)),
    "rolling_min": lambda x, session, n: _windows(x, int(n), lambda w: w.min(axis=1)),
    "rolling_max": lambda x, session, n: _windows(x, int(n), lambda w: w.max(axis=1)),
    "rolling_corr": lambda x, y, session, n: _rolling_corr(x, y, int(n)),
    "ewm_mean": lambda x, session, span: _ewm(x, span, session),
    "ffill": lambda x, session: _per_session(x, session, lambda s: s.ffill()),
    "session_cumsum": lambda x, session: _per_session(x, session, lambda s: s.fillna(0.0).cumsum()),
    "lead": lambda x, session, k: _per_session(x, session, lambda s: s.shift(-int(k))),
}

# Operators written since carry their reference in their own definition (``Operator.reference``, plain numpy or
# pandas, written apart from the compiled code): elementwise ones take the arguments' values, reducers the
# ticks' values plus ``bars`` (each tick's bar) and ``n_bars``, bar operators one entity's bar series plus
# ``session`` and their constants by name.
OWN_REFERENCE = {name for name, op in REGISTRY.items() if op.reference is not None}
SUPPORTED = set(ELEMENTWISE) | {"lag", "diff", "tick_rule", "vpin"} | set(REDUCERS) | set(BAR_OPS) | OWN_REFERENCE


def _elementwise(op: str) -> Callable[..., Any] | None:
    if op in ELEMENTWISE:
        return ELEMENTWISE[op]
    kind_ok = REGISTRY[op].kind == "elementwise" if op in REGISTRY else False
    return REGISTRY[op].reference if kind_ok else None


def _window_op(op: str, series: list[np.ndarray], session: np.ndarray, consts: dict[str, float]) -> np.ndarray:
    if op in BAR_OPS:
        return BAR_OPS[op](*series, session, *(consts[k] for k in sorted(consts)))
    own = REGISTRY[op].reference
    if own is not None:
        return own(*series, session=session, **consts)
    raise ReferenceError(f"no reference for bar operator {op}")


# ---- the evaluator ------------------------------------------------------------------------------------


# Features declared `clock: volume` in the specs under test; their columns carry no interval.
VOLUME_CLOCKED: set[str] = set()


def column_name(feature: str, interval: int, instrument: str | None) -> str:
    shown = "" if feature in VOLUME_CLOCKED else f"_{interval}s"
    return f"{feature}{shown}" + (f"_{instrument}" if instrument else "")


@dataclass
class Result:
    """All feature instances for one interval over every session day, concatenated."""

    interval: int
    days: list[str]
    n_per: int
    ts_event: dict[str, pd.DatetimeIndex]
    values: dict[Key, np.ndarray]

    def frame(self, day: str) -> pd.DataFrame:
        """One day's rows: ``ts_event`` and a column per instance (published or not)."""
        i = self.days.index(day)
        rows = slice(i * self.n_per, (i + 1) * self.n_per)
        data = {column_name(k[0], self.interval, k[1]): v[rows] for k, v in self.values.items()}
        return pd.DataFrame({"ts_event": self.ts_event[day], **data})


class Reference:
    def __init__(self, root: Path):
        checked = check(root)
        if checked.diagnostics or checked.project is None or checked.graph is None:
            raise ReferenceError("specs do not check: " + "; ".join(d.render() for d in checked.diagnostics))
        self.root = root
        self.project = checked.project
        self.instances = list(checked.graph.order)
        VOLUME_CLOCKED.update(i.spec.name for i in self.instances if i.spec.clock == "volume")
        self._ticks: dict[tuple[str, str, str], pd.DataFrame] = {}

    # ---- what exists --------------------------------------------------------------------------------
    def published(self, interval: int | None = None) -> list[Key]:
        """Published instances; with ``interval``, those whose column is written at that bar width."""
        default = self.project.intervals
        return [
            i.key
            for i in self.instances
            if i.spec.publish and (interval is None or interval in (i.spec.intervals or default))
        ]

    def chained(self) -> set[Key]:
        """The instances that read an option chain, themselves or through the features they read (the option
        columns and category III on them: tests/test_chain.py and tests/test_option_flows.py check them)."""
        out: set[Key] = set()
        for inst in self.instances:  # in dependency order: a feature after those it reads
            tree = ir.bind(inst.tree, inst.instrument)
            refs = {(n.feature, n.instrument) for n in tree.walk() if isinstance(n, ir.FeatureRef)}
            if reads_chain(tree) or refs & out:
                out.add(inst.key)
        return out

    def instance(self, key: Key) -> Any:
        return next(i for i in self.instances if i.key == key)

    def dates(self) -> list[str]:
        found: set[str] = set()
        for inst in self.project.instruments.values():
            for source in inst.sources:
                template = self.project.sources[inst.concrete(source)].path.replace("{symbol}", inst.symbol)
                pattern = re.compile(re.escape(template).replace(re.escape("{date}"), r"(\d{8})") + "$")
                for path in self.root.glob(template.replace("{date}", "*")):
                    m = pattern.search(path.relative_to(self.root).as_posix())
                    if m:
                        d = m.group(1)
                        found.add(f"{d[:4]}-{d[4:6]}-{d[6:]}")
        return sorted(found)

    def session_bounds(self, day: str) -> tuple[pd.Timestamp, pd.Timestamp]:
        s = self.project.session
        midnight = pd.Timestamp(day)
        open_ = (midnight + pd.Timedelta(seconds=s.open_seconds)).tz_localize(s.timezone).tz_convert("UTC")
        close = (midnight + pd.Timedelta(seconds=s.close_seconds)).tz_localize(s.timezone).tz_convert("UTC")
        return open_, close

    # ---- data ---------------------------------------------------------------------------------------
    def _to_utc(self, values: pd.Series, unit: str | None, zone: str | None) -> pd.Series:
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            stamps = values.dt.tz_convert("UTC")
        elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_datetime64_any_dtype(values):
            stamps = pd.to_datetime(values, unit=unit, utc=True)
        else:
            stamps = pd.to_datetime(values)
            stamps = stamps.dt.tz_localize(zone or "UTC").dt.tz_convert("UTC")
        return stamps.dt.as_unit("ns")

    def _filter(self, node: Node, raw: pd.DataFrame, params: dict[str, float] | None = None) -> Any:
        """A filter or computed column over the raw file: names are file columns, params, or nan."""
        if isinstance(node, Num):
            return node.value
        if isinstance(node, Name) and node.dotted == "nan":
            return np.nan
        if isinstance(node, Name) and params and node.dotted in params:
            return params[node.dotted]
        if isinstance(node, Name):
            return raw[node.dotted].to_numpy(dtype=np.float64, na_value=np.nan)
        assert isinstance(node, Call)
        with np.errstate(all="ignore"):
            return _elementwise(node.op)(*(self._filter(a, raw, params) for a in node.args))  # type: ignore[misc]

    def load(self, source: str, symbol: str, day: str, params: dict[str, float] | None = None) -> pd.DataFrame:
        """One source file: ``ts`` (UTC, known time) and the mapped columns, filtered and sorted."""
        src = self.project.sources[source]
        path = self.root / src.path.format(symbol=symbol, date=day.replace("-", ""))
        raw = pd.read_parquet(path) if src.format == "parquet" else pd.read_csv(path)
        frame = pd.DataFrame({"ts": self._to_utc(raw[src.time_column], src.time_unit, src.time_zone)})
        for col in src.columns:
            if col.expr is not None:
                with np.errstate(all="ignore"):
                    value = self._filter(parse(col.expr), raw, params)
                frame[col.name] = np.broadcast_to(np.asarray(value, dtype=np.float64), (len(raw),))
                continue
            frame[col.name] = raw[col.source_column].to_numpy(dtype=np.float64, na_value=np.nan) * col.scale
        if src.filter:
            keep = np.broadcast_to(self._filter(parse(src.filter), raw), (len(raw),)) != 0
            frame = frame[keep]
        if src.bar_width and src.bar_stamp == "start":
            frame["ts"] = frame["ts"] + pd.Timedelta(seconds=src.bar_width)
        return frame.sort_values("ts", kind="stable").reset_index(drop=True)

    def ticks(self, source: str, instrument: str, day: str) -> pd.DataFrame:
        """Session rows of a source for one instrument and day, with asof columns attached."""
        key = (source, instrument, day)
        if key not in self._ticks:
            inst = self.project.instruments[instrument]
            concrete = inst.concrete(source)
            src = self.project.sources[concrete]
            params = dict(inst.params)
            frame = self.load(concrete, inst.symbol, day, params)
            if src.asof_source:
                other = self.load(src.asof_source, inst.symbol, day, params)[["ts", *src.asof_columns]]
                frame = pd.merge_asof(frame, other, on="ts", direction="backward", allow_exact_matches=True)
            open_, close = self.session_bounds(day)
            frame = frame[(frame["ts"] >= open_) & (frame["ts"] < close)].reset_index(drop=True)
            self._ticks[key] = frame
        return self._ticks[key]

    # ---- evaluation ---------------------------------------------------------------------------------
    def constant(self, name: str, instrument: str | None, interval: int) -> float:
        if instrument is not None:
            return dict(self.project.instruments[instrument].params)[name]
        if name in dict(self.project.constants):
            return dict(self.project.constants)[name]
        s = self.project.session
        length = s.close_seconds - s.open_seconds
        return {
            "pi": math.pi,
            "interval_seconds": float(interval),
            "bars_per_session": float(length // interval),
            "periods_per_year": s.trading_days_per_year * length / interval,
        }[name]

    def evaluate(self, interval: int) -> Result:
        s = self.project.session
        n_per = (s.close_seconds - s.open_seconds) // interval
        days = self.dates()
        session = np.repeat(np.arange(len(days)), n_per)
        ts_event = {}
        for day in days:
            open_, _ = self.session_bounds(day)
            ts_event[day] = pd.DatetimeIndex([open_ + pd.Timedelta(seconds=interval * i) for i in range(n_per)])
        ctx = _Context(self, interval, days, n_per, session)
        values: dict[Key, np.ndarray] = {}
        chained = self.chained()
        for inst in self.instances:
            ctx.features = values
            if inst.key in chained:  # not here: tests/test_chain.py and test_option_flows.py check them
                values[inst.key] = np.full(session.shape, np.nan)
                continue
            with np.errstate(all="ignore"):
                values[inst.key] = ctx.full(ctx.bar(ir.bind(inst.tree, inst.instrument)))
        return Result(interval, days, n_per, ts_event, values)


def reads_chain(tree: Node) -> bool:
    """Whether a feature's tree reads an option chain (its operators are checked in tests/test_chain.py)."""
    return any(isinstance(n, ir.Apply) and REGISTRY[n.op].kind == "chain" for n in tree.walk())


@dataclass
class _Context:
    ref: Reference
    interval: int
    days: list[str]
    n_per: int
    session: np.ndarray
    features: dict[Key, np.ndarray] | None = None

    def full(self, value: Any) -> np.ndarray:
        return np.broadcast_to(_f(value), self.session.shape).copy()

    def bar(self, node: Node) -> Any:
        """Bar values over all sessions (or a scalar for a scalar subtree)."""
        if isinstance(node, ir.Const):
            return node.value
        if isinstance(node, ir.ParamRef):
            if node.name == "bar_index":
                return np.tile(np.arange(self.n_per, dtype=np.float64), len(self.days))
            if node.name == "time_of_day":
                return np.tile(np.arange(self.n_per, dtype=np.float64) * self.interval, len(self.days))
            return self.ref.constant(node.name, node.instrument, self.interval)
        if isinstance(node, ir.FeatureRef):
            assert self.features is not None
            return self.features[(node.feature, node.instrument)]
        if not isinstance(node, ir.Apply):
            raise ReferenceError(f"unexpected node {node!r}")
        if node.op in REDUCERS or REGISTRY[node.op].kind == "reducer":
            return self.reduce(node)
        elementwise = _elementwise(node.op)
        if elementwise is not None:
            return elementwise(*(self.bar(a) for a in node.args))
        # a window given in time: its seconds over this grid's bar width
        consts = {k: v for k, v in node.consts if not k.endswith("_seconds")}
        consts |= {k[: -len("_seconds")]: v / self.interval for k, v in node.consts if k.endswith("_seconds")}
        series = [self.full(self.bar(a)) for a in node.args]
        op = REGISTRY[node.op]
        if op.session_default:
            # an EWM restarts at each session in its own reference; with session=false it runs over all the
            # sessions as one (unlimited warm-up), which the truncated carry matches to within 1e-12 of weight
            restart = consts.pop("session", 1.0)
            return _window_op(node.op, series, self.session if restart else np.zeros_like(self.session), consts)
        if not consts.pop("session", 0.0):
            return _window_op(node.op, series, self.session, consts)
        # session=true: each session's bars on their own, as if no bar of an earlier session existed
        return np.concatenate(
            [
                _window_op(node.op, [s[self.session == day] for s in series], self.session[self.session == day], consts)
                for day in np.unique(self.session)
            ]
        )

    def reduce(self, node: ir.Apply) -> np.ndarray:
        pairs = {(n.source, n.instrument) for n in node.walk() if isinstance(n, ir.Column)}
        if len(pairs) != 1:
            raise ReferenceError(f"{node.op}() reads ticks of {sorted(pairs)}: rows of different tick tables")
        source, instrument = pairs.pop()
        step = pd.Timedelta(seconds=self.interval)
        blocks = []
        for day in self.days:
            frame = self.ref.ticks(source, instrument, day)
            open_, _ = self.ref.session_bounds(day)
            bars = ((frame["ts"] - open_) // step).to_numpy(dtype=np.int64)
            args = [np.broadcast_to(_f(self.tick(a, frame)), (len(frame),)).copy() for a in node.args]
            if node.op in REDUCERS:
                blocks.append(REDUCERS[node.op](*args, bars, self.n_per))
            else:
                blocks.append(REGISTRY[node.op].reference(*args, bars=bars, n_bars=self.n_per))  # type: ignore[misc]
        return np.concatenate(blocks)

    def tick(self, node: Node, frame: pd.DataFrame) -> Any:
        """Values per tick of one session (or a scalar)."""
        if isinstance(node, ir.Const):
            return node.value
        if isinstance(node, ir.ParamRef):
            return self.ref.constant(node.name, node.instrument, self.interval)
        if isinstance(node, ir.Column):
            return frame[node.column].to_numpy(dtype=np.float64)
        if not isinstance(node, ir.Apply):
            raise ReferenceError(f"unexpected tick node {node!r}")
        args = [self.tick(a, frame) for a in node.args]
        elementwise = _elementwise(node.op)
        if elementwise is not None:
            return elementwise(*args)
        x = np.broadcast_to(_f(args[0]), (len(frame),)).copy()
        if node.op == "lag":
            return shift_down(x, int(node.const("k")))
        if node.op == "diff":
            return x - shift_down(x, int(node.const("k")))
        if node.op == "tick_rule":
            return tick_rule(x)
        if node.op == "vpin":
            size = np.broadcast_to(_f(args[1]), (len(frame),)).copy()
            bucket = float(np.asarray(args[2]).reshape(-1)[0])
            return vpin(x, size, bucket, int(node.const("n")))
        own = REGISTRY[node.op].reference
        if own is not None:  # over one session's ticks, its constants by name
            values = [np.broadcast_to(_f(a), (len(frame),)).copy() for a in args]
            return own(*values, **dict(node.consts))
        raise ReferenceError(f"no reference for tick operator {node.op}")


# ---- comparing ----------------------------------------------------------------------------------------


def mismatches(got: np.ndarray, expected: np.ndarray, rtol: float = 1e-9, atol_scale: float = 1e-12) -> list[int]:
    """Rows where ``got`` differs from ``expected``: a different NaN/inf pattern, or finite values that are
    not within ``rtol`` (plus an absolute slack of ``atol_scale`` times the column's largest finite
    magnitude, for values that are sums with cancellation)."""
    got = _f(got)
    expected = _f(expected)
    finite = np.isfinite(expected)
    scale = float(np.max(np.abs(expected[finite]))) if finite.any() else 0.0
    same_special = (np.isnan(got) & np.isnan(expected)) | (np.isinf(expected) & (got == expected))
    with np.errstate(invalid="ignore"):
        error = np.abs(got - expected)
    close = finite & np.isfinite(got) & (error <= rtol * np.abs(expected) + atol_scale * scale)
    return [int(i) for i in np.flatnonzero(~(same_special | close))]
