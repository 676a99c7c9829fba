"""Features are resolved once per class of instruments, not once per instrument: instruments with the same
sources and parameter names share one resolved tree (so compile time does not grow with their number), and
an instrument whose parameter value shapes the tree (a window of ``n``) gets a tree of its own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fspec.compiler import resolve
from fspec.compiler.build import check, manifest_data
from fspec.manifest import ManifestData
from tests.conftest import make_project

FEATURES = {
    "spec_version": 1,
    "features": [
        {"name": "volume", "formula": "sum(trades.size)"},
        {"name": "scaled", "formula": "volume * scale"},
        {"name": "smooth", "formula": "rolling_sum(volume, n)"},
    ],
}


def _project(n_instruments: int, windows: dict[str, int] | None = None) -> str:
    windows = windows or {}
    lines = [
        "spec_version: 1",
        "sources:",
        "  trades:",
        "    path: data/{symbol}/{date}.parquet",
        "    time: {column: ts, unit: ns}",
        "    columns: {price: float64, size: float64}",
        "instruments:",
    ]
    for k in range(n_instruments):
        key = f"s{k}"
        lines.append(f"  {key}: {{symbol: S{k}, params: {{scale: {k + 1}.0, n: {windows.get(key, 3)}}}}}")
    lines += ["intervals: [60s]", 'session: {timezone: America/New_York, open: "09:30", close: "10:30"}']
    return "\n".join(lines) + "\n"


def _resolves(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, n: int) -> int:
    calls = []
    original = resolve._resolve_one

    def counting(*args: object) -> object:
        calls.append(args[3])
        return original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(resolve, "_resolve_one", counting)
    make_project(tmp_path / str(n), {"project.yaml": _project(n), "features.yaml": FEATURES})
    checked = check(tmp_path / str(n))
    assert checked.plan is not None, checked.diagnostics
    return len(calls)


def test_a_feature_is_resolved_once_per_class_not_per_instrument(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert _resolves(monkeypatch, tmp_path, 2) == 3  # three features, one class
    assert _resolves(monkeypatch, tmp_path, 200) == 3


def test_members_share_one_compiled_feature_with_their_own_parameters(tmp_path: Path) -> None:
    make_project(tmp_path, {"project.yaml": _project(12), "features.yaml": FEATURES})
    checked = check(tmp_path)
    assert checked.plan is not None
    scaled = [f for f in checked.plan.features if f.name == "scaled"]
    assert len(scaled) == 1
    assert scaled[0].members == tuple(f"s{k}" for k in range(12))  # natural order: s2 before s10
    assert scaled[0].resolved == "{instrument}.volume * {instrument}.scale"


def test_a_parameter_read_as_a_window_splits_the_class(tmp_path: Path) -> None:
    project = _project(4, windows={"s1": 5, "s3": 5})
    make_project(tmp_path, {"project.yaml": project, "features.yaml": FEATURES})
    checked = check(tmp_path)
    assert checked.plan is not None and checked.graph is not None
    smooth = sorted((f.members, f.window.left) for f in checked.plan.features if f.name == "smooth")
    assert smooth == [(("s0", "s2"), 2), (("s1", "s3"), 4)]
    assert {
        i.instrument: checked.graph.windows[i.key].left for i in checked.graph.order if i.spec.name == "smooth"
    } == {
        "s0": 2,
        "s1": 4,
        "s2": 2,
        "s3": 4,
    }


QUOTES = """\
  quotes:
    path: q/{symbol}/{date}.parquet
    time: {column: ts, unit: ns}
    columns: {bid: float64}
"""


def test_an_error_names_each_instrument_of_the_class(tmp_path: Path) -> None:
    """Two listed instruments without the feature's source: one message for each, naming it."""
    features = {
        "spec_version": 1,
        "features": [{"name": "bad", "formula": "sum(trades.size)", "instruments": ["s0", "s1"]}],
    }
    project = _project(2).replace("instruments:\n", QUOTES + "instruments:\n")
    for key in ("S0", "S1"):
        project = project.replace(f"{{symbol: {key},", f"{{symbol: {key}, sources: [quotes],")
    make_project(tmp_path, {"project.yaml": project, "features.yaml": features})
    messages = [d.message for d in check(tmp_path).diagnostics]
    assert messages == [
        "'bad' for instrument 's0': instrument 's0' has no source 'trades'",
        "'bad' for instrument 's1': instrument 's1' has no source 'trades'",
    ]


def test_the_manifest_s_features_do_not_grow_with_instruments(tmp_path: Path) -> None:
    """Only the project's own list of instruments grows: each distinct members list is written once."""
    sizes = []
    for n in (3, 300):
        root = tmp_path / str(n)
        make_project(root, {"project.yaml": _project(n, windows={"s1": 5}), "features.yaml": FEATURES})
        checked = check(root)
        assert checked.plan is not None
        texts = {k.module: "" for k in checked.plan.kernels}
        data = manifest_data(root, checked, texts).to_json()
        assert ManifestData.from_json(data) == manifest_data(root, checked, texts)
        sizes.append(len(json.dumps(data["features"])))
    assert sizes[0] == sizes[1]


def test_a_member_s_parameter_in_another_instrument_s_ticks_is_its_value(tmp_path: Path) -> None:
    """sum(s0.trades.size * scale) for s1 and s2: the kernel runs on s0's ticks with s0's parameters, so each
    member's own scale is a constant of its slot."""
    features = {
        "spec_version": 1,
        "features": [{"name": "x", "formula": "sum(s0.trades.size * scale)", "instruments": ["s1", "s2"]}],
    }
    make_project(tmp_path, {"project.yaml": _project(3), "features.yaml": features})
    checked = check(tmp_path)
    assert checked.plan is not None, [d.render() for d in checked.diagnostics]
    (kernel,) = checked.plan.kernels
    assert sorted(s.text for s in kernel.slots) == ["sum(trades.size * 2)", "sum(trades.size * 3)"]


def test_a_thousand_different_windows_resolve_without_recursion(tmp_path: Path) -> None:
    n = 1100
    project = _project(n, windows={f"s{k}": k + 2 for k in range(n)})
    make_project(tmp_path, {"project.yaml": project, "features.yaml": FEATURES})
    checked = check(tmp_path)
    assert checked.plan is not None and checked.graph is not None
    windows = {i.instrument: checked.graph.windows[i.key].left for i in checked.graph.order if i.spec.name == "smooth"}
    assert windows == {f"s{k}": k + 1 for k in range(n)}
