"""What the code generator puts where: per-tick loop, end-of-bar scans, vectorised derived columns.

The numbers these kernels give are checked against the reference elsewhere (test_kernels_vs_reference.py,
test_properties.py); these tests pin the structure that makes them fast, so a change that silently moves work
back into the per-tick loop fails here.
"""

from __future__ import annotations

import ast
import itertools
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import FspecProject, make_project
from numba import njit
from numba.core.errors import TypingError

from fspec.compiler.build import check
from fspec.compiler.codegen import KernelModel, kernel_model, lift_constants, render_kernel, slot_stem
from fspec.compiler.lower import TickKernel
from fspec.runtime.kernels import load_kernel, reduce_entities, reduce_session
from fspec.runtime.scalars import prefetch

PROJECT = """\
spec_version: 1
sources:
  trades:
    path: data/{symbol}/{date}.parquet
    time: {column: ts, unit: ns}
    columns: {price: float64, size: float64}
instruments:
  abc: {symbol: ABC, params: {scale: 2.0}}
intervals: [60s]
session: {timezone: America/New_York, open: "09:30", close: "10:30"}
"""


def _kernel(tmp_path: Path, *formulas: str) -> TickKernel:
    features = {"spec_version": 1, "features": [{"name": f"f{i}", "formula": f} for i, f in enumerate(formulas)]}
    make_project(tmp_path, {"project.yaml": PROJECT, "features.yaml": features})
    checked = check(tmp_path)
    assert checked.plan is not None, checked.problems
    (kernel,) = checked.plan.kernels
    return kernel


def _loop(model: KernelModel) -> str:
    return "\n".join(step.text for step in model.steps)


def test_log_of_a_column_is_computed_once_vectorised(tmp_path: Path) -> None:
    kernel = _kernel(tmp_path, "sum(diff(log(trades.price)))", "sum(log(trades.price) * trades.size)")
    model = kernel_model(kernel)
    assert [d.text for d in model.derived] == ["log(trades.price)"]
    assert "np.log" not in _loop(model)
    assert "derived_0[i]" in _loop(model)
    source = render_kernel(kernel)
    assert "np.log(col_price, out=derived[0])  # log(trades.price)" in source
    assert "derived[0, lo:hi]," in source and "derived_0, params, out, carry, resume):" in source
    compile(source, "kernel.py", "exec")  # valid Python


def test_the_loop_prefetches_exactly_the_arrays_it_reads(tmp_path: Path) -> None:
    kernel = _kernel(tmp_path, "sum(diff(log(trades.price)))", "sum(log(trades.price) * trades.size)")
    model = kernel_model(kernel)
    assert model.loop_reads == ["derived_0", "col_size"]
    source = render_kernel(kernel)
    loop = source[source.index("for i in range(start, stop):") :]
    prefetched = [line.strip() for line in loop.splitlines() if line.strip().startswith("prefetch(")]
    assert prefetched == ["prefetch(derived_0, i + PREFETCH)", "prefetch(col_size, i + PREFETCH)"]


def test_hoisted_expressions_keep_parameters_and_nesting(tmp_path: Path) -> None:
    model = kernel_model(_kernel(tmp_path, "sum(exp(sqrt(abs(trades.price - scale)) / 2))"))
    # a parameter may differ between the entities of one call: that row is derived entity by entity
    assert [(d.statement, d.uses_params) for d in model.derived] == [
        ("np.exp((np.sqrt(np.abs((col_price[lo:hi] - params[e, 0]))) / 2.0), out=derived[0, lo:hi])", True)
    ]


def test_one_call_over_many_entities_equals_one_call_per_entity(tmp_path: Path) -> None:
    """The entity loop: rows of several instruments in one call (one with no rows), each with its own
    parameters and tick-level state, give exactly the slots of one call per instrument."""
    formulas = ("sum(exp(trades.price - scale))", "sum(diff(trades.price))", "last(trades.size * scale)")
    kernel = _kernel(tmp_path, *formulas)
    path = tmp_path / "kernel_entities.py"
    path.write_text(render_kernel(kernel), encoding="utf-8")
    module = load_kernel(path, "test_entities_kernel")
    rng = np.random.default_rng(7)
    bar_ends = np.array([10, 20, 30, 40], dtype=np.int64)
    lengths, scales = [50, 0, 17], [2.0, -1.0, 0.5]
    ts_parts = [np.sort(rng.integers(0, 40, n)).astype(np.int64) for n in lengths]
    price_parts = [rng.normal(size=n) for n in lengths]
    size_parts = [rng.uniform(1, 5, size=n) for n in lengths]
    for part in price_parts[2:]:
        part[3] = np.nan
    starts = np.cumsum([0, *lengths]).astype(np.int64)
    out = np.empty((3, len(kernel.slots), len(bar_ends)))
    carry = np.empty((3, module.CARRY))
    params = np.array(scales)[:, None]
    columns = [np.concatenate(price_parts), np.concatenate(size_parts)]
    reduce_entities(module, np.concatenate(ts_parts), starts, bar_ends, columns, params, carry, False, out)
    for e in range(3):
        alone = reduce_session(module, ts_parts[e], bar_ends, [price_parts[e], size_parts[e]], params[e])
        np.testing.assert_array_equal(out[e], alone)


def test_log_of_a_stateful_expression_stays_in_the_loop(tmp_path: Path) -> None:
    model = kernel_model(_kernel(tmp_path, "sum(log(tick_rule(trades.price) + 2))"))
    assert model.derived == []
    assert "np.log(" in _loop(model)


def test_first_and_last_of_stateless_expressions_are_read_at_the_bar_ends(tmp_path: Path) -> None:
    kernel = _kernel(tmp_path, "last(log(trades.price))", "first(trades.price * trades.size)", "sum(trades.size)")
    model = kernel_model(kernel)
    assert [(scan.slot, scan.reducer) for scan in model.lazy] == [(0, "last"), (1, "first")]
    assert model.derived == []  # read once per bar: not worth a vectorised pass
    assert "col_price" not in _loop(model)  # the loop only sums sizes
    assert model.loop_reads == ["col_size"]  # and prefetches only them
    source = render_kernel(kernel)
    assert "for j in range(stop - 1, start - 1, -1):  # slot 0: last(log(trades.price))" in source
    assert "for j in range(start, stop):  # slot 1: first(trades.price * trades.size)" in source


def test_first_and_last_of_stateful_expressions_are_kept_per_tick(tmp_path: Path) -> None:
    model = kernel_model(_kernel(tmp_path, "first(diff(trades.price))", "last(tick_rule(trades.price))"))
    assert model.lazy == []
    assert "first_diff_price = " in _loop(model) and "last_tick_rule_price = " in _loop(model)


def test_reducer_locals_are_named_after_their_slot(tmp_path: Path) -> None:
    """Kernels read as what they compute: a slot's locals carry its reducer and the words of its formula, and a
    name two slots would share gets a number."""
    kernel = _kernel(
        tmp_path,
        "sum(trades.size)",
        "mean(trades.price * trades.size)",
        "std(diff(log(trades.price)))",
        "max(trades.price)",
        "max(trades.price * 2)",
        "wmean(trades.price, trades.size)",
    )
    assert [slot_stem(s) for s in kernel.slots] == [
        "sum_size",
        "mean_price_size",
        "std_diff_log_price",
        "max_price",
        "max_price",
        "wmean_price_size",
    ]
    model = kernel_model(kernel)
    assert model.bar_locals == [
        "sum_size = 0.0",
        "mean_price_size_sum = 0.0",
        "mean_price_size_cnt = 0.0",
        "std_diff_log_price_cnt = 0.0",
        "std_diff_log_price_avg = 0.0",
        "std_diff_log_price_m2 = 0.0",
        "max_price = nan",
        "max_price_2 = nan",
        "wmean_price_size_num = 0.0",
        "wmean_price_size_den = 0.0",
    ]
    assert [f.code for f in model.flush][:1] == ["out[0, b] = sum_size"]
    assert "# slot 4: max(trades.price * 2)" in _loop(model)
    source = render_kernel(kernel)
    assert not re.search(r"\b(acc|val|cnt|sum)\d+\b", source)  # no numbered accumulators are left
    ast.parse(source)


def test_a_slot_name_never_shadows_a_name_the_kernel_uses(tmp_path: Path) -> None:
    """A name that is taken (by another slot, or kept out) is numbered instead."""
    model = kernel_model(_kernel(tmp_path, "sum(trades.size)", "sum(trades.size + 1)"))
    assert model.bar_locals == ["sum_size = 0.0", "sum_size_2 = 0.0"]
    # the names kernel_model keeps out (a tick operator's state, when it clashed with a slot's name)
    avoided = kernel_model(_kernel(tmp_path / "b", "sum(trades.size)"), avoid=frozenset({"sum_size"}))
    assert avoided.bar_locals == ["sum_size_2 = 0.0"]


def test_tick_state_is_laid_out_in_the_carry_array(tmp_path: Path) -> None:
    """A session split in two parts hands every state variable from the first part to the second."""
    model = kernel_model(_kernel(tmp_path, "sum(lag(trades.price, 3))", "sum(trades.size * tick_rule(trades.price))"))
    layout = [(v.name, v.offset, v.size) for v in model.state]
    assert layout == [("ring0", 0, 3), ("pos0", 3, 1), ("last_px2", 4, 1), ("sgn2", 5, 1)]
    assert model.carry_size == 6
    assert [v.load for v in model.state] == [
        "for q in range(3):\n    ring0[q] = carry[0 + q]",  # element by element: see StateVar
        "pos0 = int(carry[3])",
        "last_px2 = carry[4]",
        "sgn2 = carry[5]",
    ]
    assert [v.store for v in model.state][:2] == ["for q in range(3):\n    carry[0 + q] = ring0[q]", "carry[3] = pos0"]


def test_a_kernel_of_end_of_bar_reads_only_has_no_tick_loop(tmp_path: Path) -> None:
    kernel = _kernel(tmp_path, "last(trades.price)", "first(trades.size)")
    source = render_kernel(kernel)
    assert "for i in range" not in source
    ast.parse(source)  # valid Python without a per-tick loop body


def test_prefetch_is_only_a_hint() -> None:
    """Past the end of the array, or far past it, the hint neither faults nor changes what the loop computes."""

    @njit
    def total(values: np.ndarray, ahead: int) -> float:
        acc = 0.0
        for i in range(values.shape[0]):
            prefetch(values, i + ahead)
            acc += values[i]
        return acc

    values = np.arange(1000, dtype=np.float64)
    assert total(values, 256) == total(values, 0) == values.sum()
    assert total(values, 1 << 40) == values.sum()

    @njit
    def of_a_matrix(values: np.ndarray) -> None:
        prefetch(values, 0)

    with pytest.raises(TypingError):
        of_a_matrix(np.zeros((2, 2)))


def test_generated_kernels_run_as_plain_python(sample_project: FspecProject, tmp_path: Path) -> None:
    """Under NUMBA_DISABLE_JIT=1 a quant can step through a kernel with a debugger: it runs, and gives the
    slots the compiled kernel gives."""
    probe = Path(__file__).with_name("kernel_probe.py")
    results = {}
    for mode, env in (("jit", {}), ("python", {"NUMBA_DISABLE_JIT": "1"})):
        out = tmp_path / f"{mode}.npz"
        done = subprocess.run(
            [sys.executable, str(probe), str(sample_project.root), str(out)],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        results[mode] = np.load(out)
    assert sorted(results["jit"]) == sorted(results["python"]) and len(results["jit"]) >= 3
    for name in results["jit"]:
        np.testing.assert_array_equal(results["jit"][name], results["python"][name])


def test_constants_of_tick_formulas_are_parameters_and_an_edit_of_one_renders_the_same_file(tmp_path: Path) -> None:
    """An elementwise operator's constant is read from params (const__k): a kernel whose formulas differ only in
    such constants renders the same text (numba's cache of it stays valid), and the values come apart. An
    exponent stays in the code; an equal subexpression is still one local; a reducer's constants stay."""
    formulas = ("sum(trades.size * (trades.size >= {t}))", "sum(where(trades.price > (trades.size + 1) / 2, {s}, 0))")
    base = _kernel(tmp_path / "a", formulas[0].format(t=100), formulas[1].format(s=3), "sum(trades.price ** 2)")
    edit = _kernel(tmp_path / "b", formulas[0].format(t=500), formulas[1].format(s=-7), "sum(trades.price ** 2)")
    assert render_kernel(base) == render_kernel(edit)
    lifted, values = lift_constants(base)
    assert values == (100.0, 1.0, 2.0, 3.0, 0.0)
    assert lift_constants(edit)[1] == (500.0, 1.0, 2.0, -7.0, 0.0)
    assert lifted.params == ("const__0", "const__1", "const__2", "const__3", "const__4")
    source = render_kernel(base)
    assert "** 2.0" in source and "param_const__0 = params[0]" in source
    assert "500" not in render_kernel(edit) and "-7" not in render_kernel(edit)
    pow2 = _kernel(tmp_path / "c", "sum(trades.price ** 3)")
    assert render_kernel(pow2) != render_kernel(_kernel(tmp_path / "d", "sum(trades.price ** 2)"))
    shared = _kernel(tmp_path / "e", "sum(where(trades.price > trades.size / 2, trades.size / 2, 0))")
    lifted, values = lift_constants(shared)
    assert values == (2.0, 0.0)  # trades.size / 2 is one subexpression, computed once
    assert _loop(kernel_model(lifted)).count("/ param_const__0") == 1


UNSET = 1e300  # a value no slot computes here: what a kernel has not written


def test_a_kernel_in_one_function_computes_what_the_fused_kernel_computes(tmp_path: Path) -> None:
    """The slots an edit adds are compiled as one function (``single``: the entity loop and the tick loop
    together), which numba compiles faster than a function per entity and its caller. Over several entities,
    each with its own parameters and state, and a session computed in two parts (carry, resume), it gives the
    fused kernel's slots bit for bit: tick state, vectorised log, end-of-bar scans, parameters, constants."""
    formulas = (
        "sum(diff(log(trades.price)))",
        "sum(trades.size * tick_rule(trades.price))",
        "last(trades.size * scale)",
        "sum(lag(trades.price, 2) * (trades.size >= 2))",
        "std(exp(trades.price - scale))",
    )
    kernel = _kernel(tmp_path, *formulas)
    fused_text, single_text = render_kernel(kernel), render_kernel(kernel, single=True)
    assert fused_text.count("@njit") == 2 and single_text.count("@njit") == 1
    assert "def reduce_entity(" not in single_text and "reduce_entity" not in single_text.split("__all__")[1][:200]
    compile(single_text, "single.py", "exec")
    modules = []
    for name, text in (("fused", fused_text), ("single", single_text)):
        path = tmp_path / f"kernel_{name}.py"
        path.write_text(text, encoding="utf-8")
        modules.append(load_kernel(path, f"test_single_{name}"))
    fused, single = modules
    assert (single.SLOTS, single.COLUMNS, single.PARAMS, single.CARRY) == (
        fused.SLOTS,
        fused.COLUMNS,
        fused.PARAMS,
        fused.CARRY,
    )
    rng = np.random.default_rng(11)
    bar_ends = np.array([10, 20, 30, 40], dtype=np.int64)
    lengths = [60, 0, 23, 5]
    ts = np.concatenate([np.sort(rng.integers(0, 40, n)) for n in lengths]).astype(np.int64)
    price = rng.lognormal(0, 0.2, ts.shape[0])
    price[::9] = np.nan
    size = rng.integers(1, 4, ts.shape[0]).astype(np.float64)
    starts = np.cumsum([0, *lengths]).astype(np.int64)
    _, constants = lift_constants(kernel)
    params = np.column_stack([[2.0, -1.0, 0.5, 3.0], np.broadcast_to(constants, (4, len(constants)))])
    got = {}
    for name, module in (("fused", fused), ("single", single)):
        # the first two bars, then the last two continuing from the carried state
        first = np.full((4, len(module.SLOTS), 2), UNSET)
        carry = np.full((4, module.CARRY), UNSET)
        cut = np.array([np.searchsorted(ts[lo:hi], 20) + lo for lo, hi in itertools.pairwise(starts)])
        head = np.concatenate([np.arange(lo, c) for lo, c in zip(starts[:-1], cut, strict=True)]).astype(np.int64)
        tail = np.concatenate([np.arange(c, hi) for c, hi in zip(cut, starts[1:], strict=True)]).astype(np.int64)
        head_starts = np.cumsum([0, *(cut - starts[:-1])]).astype(np.int64)
        tail_starts = np.cumsum([0, *(starts[1:] - cut)]).astype(np.int64)
        columns = [price, size]
        reduce_entities(
            module, ts[head], head_starts, bar_ends[:2], [c[head] for c in columns], params, carry, False, first
        )
        second = np.full((4, len(module.SLOTS), 2), UNSET)
        reduce_entities(
            module, ts[tail], tail_starts, bar_ends[2:], [c[tail] for c in columns], params, carry, True, second
        )
        whole = np.full((4, len(module.SLOTS), 4), UNSET)
        reduce_entities(module, ts, starts, bar_ends, columns, params, np.empty_like(carry), False, whole)
        got[name] = (np.concatenate([first, second], axis=2), whole, carry)
    for a, b in zip(got["fused"], got["single"], strict=True):
        np.testing.assert_array_equal(a, b)
    assert np.isfinite(got["single"][1]).any() and (got["single"][1] != UNSET).all()


@njit
def _numba_mean(values: np.ndarray) -> float:
    return np.mean(values)


def test_the_kernels_helpers_give_numpys_values() -> None:
    """bar_stops, filled and mean_of are loops (numba compiles numpy's own versions slowly): they give
    np.searchsorted's, np.full's and np.mean's values, to the bit, on ties, empty inputs and bar ends outside
    the ticks."""
    from fspec.runtime.scalars import bar_stops, filled, mean_of

    rng = np.random.default_rng(3)
    for n in (0, 1, 2, 7, 1000):
        ts = np.sort(rng.integers(0, 50, n)).astype(np.int64)  # many ties
        for ends in (np.array([], dtype=np.int64), np.array([-5, 0, 3, 3, 49, 50, 51, 10**12], dtype=np.int64)):
            got = bar_stops(ts, ends)
            assert got.dtype == np.int64
            np.testing.assert_array_equal(got, np.searchsorted(ts, ends))
        ends = np.sort(rng.integers(-10, 60, 40)).astype(np.int64)
        np.testing.assert_array_equal(bar_stops(ts, ends), np.searchsorted(ts, ends))
        values = rng.normal(size=n) * 10.0 ** rng.integers(-8, 8, n)
        if n:  # numba's np.mean, which the kernels called before: the sum in order (numpy's own sums pairwise)
            total = 0.0
            for v in values.tolist():  # (Python's sum() of floats compensates from 3.12 on)
                total += v
            assert mean_of(values) == _numba_mean(values) == total / n
        else:
            assert np.isnan(mean_of(values)) and np.isnan(_numba_mean(values))
        np.testing.assert_array_equal(filled(n, -2.5), np.full(n, -2.5))
        assert np.isnan(filled(n, np.nan)).all() and filled(n, 0.0).dtype == np.float64
