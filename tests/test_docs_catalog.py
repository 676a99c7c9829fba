"""`fspec docs` (runtime/catalog.py): the static HTML catalog, in a real headless Chromium and against pandas.

The browser tests need Chromium from the system packages (``apt-get install -y chromium``; .ci/run installs it).
Without it they fail, saying so; on a machine where it cannot be installed, ``FSPEC_SKIP_BROWSER=1`` skips them
instead (and only them: the catalog's numbers are still checked against pandas below)."""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from fspec.compiler.build import compile_project
from fspec.runtime.catalog import (
    LAYER_CAP,
    LINK_CAP,
    MAX_BUCKETS,
    SPARK_HEIGHT,
    SPARK_PAD,
    SPARK_WIDTH,
    Catalog,
    Entry,
    build_catalog,
)
from fspec.runtime.ls import list_columns
from fspec.runtime.manifest import load_manifest
from fspec.runtime.universe import with_members
from tests.conftest import FspecProject, cli, expect

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("FSPEC_SKIP_BROWSER") == "1":
        pytest.skip("no Chromium here and FSPEC_SKIP_BROWSER=1: the catalog's browser tests were not run")
    pytest.fail(
        f"no Chromium found (looked for {', '.join(BROWSERS)}): the catalog is tested in a real browser. "
        "Install it with 'apt-get install -y chromium' (.ci/run does), or set FSPEC_SKIP_BROWSER=1 to skip "
        "these tests on a machine where it cannot be installed"
    )


def _headless(url: str, tmp: Path, screenshot: Path | None = None) -> tuple[str, list[str]]:
    """The DOM after the page's scripts ran, and every console message (Chromium logs them, with uncaught
    errors, as INFO:CONSOLE lines on stderr with --enable-logging=stderr)."""
    args = [
        _browser(),
        "--headless",
        "--no-sandbox",  # the sandbox cannot start as root or in many containers; the page is our own file
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        f"--user-data-dir={tmp / 'profile'}",  # not the user's profile, and one per test
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1280,1600",
        "--dump-dom",
    ]
    if screenshot is not None:
        args.append(f"--screenshot={screenshot}")
    proc = subprocess.run([*args, url], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, f"chromium exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    return proc.stdout, [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]


class _Articles(HTMLParser):
    """Each catalog entry's column and whether it is hidden, from a dumped DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.shown: list[str] = []
        self.hidden: list[str] = []
        self.texts: dict[str, str] = {}
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "article" and "entry" in (a.get("class") or ""):
            column = a["data-column"] or ""
            (self.hidden if "hidden" in a else self.shown).append(column)
        if tag == "span" and a.get("id") == "count":
            self._in = "count"

    def handle_data(self, data: str) -> None:
        if self._in:
            self.texts[self._in] = self.texts.get(self._in, "") + data

    def handle_endtag(self, tag: str) -> None:
        self._in = None


def _articles(dom: str) -> _Articles:
    parser = _Articles()
    parser.feed(dom)
    return parser


@pytest.fixture(scope="module")
def catalog_dir(sample_project: FspecProject, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`fspec docs` of the shipped, compiled and run sample."""
    out = tmp_path_factory.mktemp("catalog")
    shown = expect(cli("docs", "--project", sample_project.root, "--out", out), 0)
    assert re.search(r"wrote .*index\.html: 284 column\(s\) of \d+ feature\(s\)", shown), shown
    assert "run fspec run first" not in shown
    return out


@pytest.fixture(scope="module")
def catalog(sample_project: FspecProject) -> Catalog:
    return build_catalog(load_manifest(sample_project.root))


def _entry(catalog: Catalog, column: str, interval: str) -> Entry:
    return next(e for e in catalog.entries if e.column == column and e.interval == interval)


# ---- in the browser -----------------------------------------------------------------------------------------


def test_console_errors_are_seen(tmp_path: Path) -> None:
    """The check below is worth something only if a page's console error reaches it."""
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>no_such_function();</script></body></html>", encoding="utf-8")
    _, console = _headless(page.as_uri(), tmp_path)
    assert any("no_such_function" in line for line in console), console


def test_the_page_loads_without_console_errors_and_search_finds_a_feature(
    catalog_dir: Path, sample_project: FspecProject, tmp_path: Path
) -> None:
    page = catalog_dir / "index.html"
    html = page.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "the page must load nothing from elsewhere"
    shot = tmp_path / "catalog.png"
    dom, console = _headless(page.as_uri() + "?q=realized_vol", tmp_path, screenshot=shot)
    assert console == [], console
    assert shot.is_file() and shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # which columns the query should show, from `fspec ls` and the manifest, by the search's rule
    manifest = load_manifest(sample_project.root)
    rows = list_columns(manifest, None)
    expected = set()
    for r in rows:
        f = manifest.feature(r.feature, r.instrument or None)
        text = " ".join([r.column, r.feature, r.instrument, f.formula, f.resolved_for(r.instrument or None)])
        if "realized_vol" in text.lower():
            expected.add(r.column)
    seen = _articles(dom)
    assert set(seen.shown) == expected
    assert {"realized_vol_30s_spy", "realized_vol_60s_qqq", "target_next_rv_change_regr_30s_spy"} <= expected
    assert "vwap_30s_spy" in seen.hidden
    assert len(seen.shown) + len(seen.hidden) == len(rows) == 284
    assert seen.texts["count"] == f"{len(seen.shown)} of 284 columns"


def test_tags_no_output_and_escaping(sample_project: FspecProject, tmp_path: Path) -> None:
    """An edited build with a tag and markup in a description, never run: tag:WORD finds the tagged feature,
    the markup is text, and each entry says to run first."""
    root = tmp_path / "tagged"
    shutil.copytree(sample_project.root / "specs", root / "specs")
    path = root / "specs" / "microstructure.yaml"
    text = path.read_text(encoding="utf-8")
    old = "  - name: realized_vol\n"
    assert text.count(old) == 1
    path.write_text(text.replace(old, old + "    tags: [volatility]\n"), encoding="utf-8")
    returns = root / "specs" / "returns.yaml"
    text = returns.read_text(encoding="utf-8")
    old = "    description: Log return from the bar's first trade to its last trade (NaN for an empty bar).\n"
    assert text.count(old) == 1
    returns.write_text(text.replace(old, "    description: a <b>bold</b> & <script>alert(1)</script>\n"))
    compile_project(root)
    out = tmp_path / "docs"
    shown = expect(cli("docs", "--project", root, "--out", out, "--select", "tag:volatility bar_return"), 0)
    assert "wrote docs/index.html" not in shown and "20 column(s) of 2 feature(s)" in shown
    assert "run fspec run first" in shown
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in html and "<b>bold</b>" not in html
    dom, console = _headless((out / "index.html").as_uri() + "?q=tag:volatility", tmp_path, tmp_path / "tags.png")
    assert console == [], console
    seen = _articles(dom)
    instruments = ("mes", "mnq", "qqq", "spy", "vxx")
    assert set(seen.shown) == {f"realized_vol_{i}s_{s}" for i in (30, 60) for s in instruments}
    assert set(seen.hidden) == {f"bar_return_{i}s_{s}" for i in (30, 60) for s in instruments}
    assert "no 30s output file in out/: run fspec run first" in dom
    # without a query every entry shows
    dom, console = _headless((out / "index.html").as_uri(), tmp_path)
    assert console == [] and len(_articles(dom).shown) == 20 and _articles(dom).texts["count"] == "20 of 20 columns"
    # a bare word matches tags too (by substring), and names
    dom, _ = _headless((out / "index.html").as_uri() + "?q=volat", tmp_path)
    assert set(_articles(dom).shown) == {f"realized_vol_{i}s_{s}" for i in (30, 60) for s in instruments}
    assert "a &lt;b&gt;bold&lt;/b&gt; &amp; &lt;script&gt;alert(1)&lt;/script&gt;" in html


# ---- the numbers, against pandas ----------------------------------------------------------------------------


def test_sparkline_matches_pandas(catalog: Catalog, sample_project: FspecProject) -> None:
    for column, interval in [("realized_vol_30s_spy", "30s"), ("ret_lag_10_60s_spy", "60s"), ("vpin_spy", "30s")]:
        e = _entry(catalog, column, interval)
        values = pd.read_parquet(sample_project.root / "out" / f"features_20131007_{interval}.parquet")[column]
        assert e.plot is not None, e.plot_note
        finite = values[np.isfinite(values)]
        assert (e.plot.low, e.plot.high, e.plot.last) == (finite.min(), finite.max(), finite.iloc[-1])
        assert (e.plot.bars, e.plot.finite, e.plot.days) == (len(values), len(finite), ("2013-10-07",))
        # every bucket's drawn points are its lowest and highest finite value (to the path's 0.1 px)
        buckets = min(MAX_BUCKETS, len(values))
        bucket = pd.Series(np.repeat(np.arange(buckets), np.diff(np.linspace(0, len(values), buckets + 1).astype(int))))
        frame = pd.DataFrame({"v": values.to_numpy(), "b": bucket}).replace([np.inf, -np.inf], np.nan).dropna()
        want = frame.groupby("b")["v"].agg(["min", "max"])
        inner_w, inner_h = SPARK_WIDTH - 2 * SPARK_PAD, SPARK_HEIGHT - 2 * SPARK_PAD
        points = [(float(x), float(y)) for x, y in re.findall(r"[ML](-?[\d.]+) (-?[\d.]+)", e.plot.path)]
        got: dict[int, list[float]] = {}
        for x, y in points:
            b = round((x - SPARK_PAD) / inner_w * (buckets - 1))
            got.setdefault(b, []).append(e.plot.high - (y - SPARK_PAD) / inner_h * (e.plot.high - e.plot.low))
        assert sorted(got) == list(want.index)
        tolerance = 0.051 / inner_h * (e.plot.high - e.plot.low) + 1e-12
        for b, row in want.iterrows():
            assert min(got[b]) == pytest.approx(row["min"], abs=tolerance)
            assert max(got[b]) == pytest.approx(row["max"], abs=tolerance)


def test_lineage_matches_the_files_metadata(catalog: Catalog, sample_project: FspecProject) -> None:
    """The graph's columns are the lineage the run wrote into the file's metadata (runtime/write.py), and every
    edge runs left to right, from what is read to what reads it."""
    meta = pq.read_schema(sample_project.root / "out" / "features_20131007_30s.parquet").metadata
    columns = __import__("json").loads(meta[b"fspec"])["columns"]
    for column in ["target_next_qqq_spy_spread_change_class_30s", "vwap_deviation_30s_spy", "ret_lag_10_30s_spy"]:
        e = _entry(catalog, column, "30s")
        features = {n.label for n in e.lineage.nodes if n.kind not in ("source", "self", "more")}
        want = set()
        for name, instrument in columns[column]["lineage"]:
            f = load_manifest(sample_project.root).feature(name, instrument)
            want.add(name + ("" if f.clock == "volume" else "_30s") + (f"_{instrument}" if instrument else ""))
        assert features == want
        assert [n.label for n in e.lineage.nodes if n.kind == "self"] == [column]
        for edge in e.lineage.edges:
            x1, _, x2 = re.match(r"M([\d.]+) ([\d.]+) C.* ([\d.]+) [\d.]+$", edge.path).groups()  # type: ignore[union-attr]
            assert float(x1) < float(x2)
    spread = _entry(catalog, "target_next_qqq_spy_spread_change_class_30s", "30s").lineage
    assert {n.label for n in spread.nodes if n.kind == "source"} == {"qqq.quotes", "spy.quotes"}
    assert {n.label for n in spread.nodes if n.kind == "helper"} == {
        "mid_30s_qqq",
        "mid_30s_spy",
        "qqq_spy_log_spread_30s",
    }
    # a published node links to its own entry; a helper has none
    assert {n.href for n in spread.nodes if n.label == "log_mid_price_30s_qqq"} == {"#c-30s-log_mid_price_30s_qqq"}
    assert all(n.href is None for n in spread.nodes if n.kind == "helper")
    assert len(spread.edges) == 7  # quotes->mid and mid->log_mid for each, two into the spread, one into the target


def test_window_warmup_and_lookahead_are_explains(catalog: Catalog, sample_project: FspecProject) -> None:
    from fspec.runtime.explain import explain_column

    manifest = load_manifest(sample_project.root)
    for column, interval in [("ret_lag_10_60s_spy", "60s"), ("target_next_rv_change_regr_30s_spy", "30s")]:
        e = _entry(catalog, column, interval)
        explained = dict(re.findall(r"^([a-z -]+):\s+(.*)$", explain_column(manifest, column), flags=re.M))
        assert (e.window, e.warmup, e.lookahead) == (explained["window"], explained["warm-up"], explained["lookahead"])
    lag = _entry(catalog, "ret_lag_10_60s_spy", "60s")
    bars_per_session = 6.5 * 3600 / 60
    assert lag.warmup == f"10 bar(s) back; earlier sessions loaded: {math.ceil(10 / bars_per_session)} at 60s"
    assert lag.lookahead.startswith("none: the composed window's right edge is -10")
    assert _entry(catalog, "target_next_rv_change_regr_30s_spy", "30s").lookahead.startswith("a target: reads 1 bar")


def test_a_stale_or_missing_output_column_is_said_not_drawn(sample_project: FspecProject, tmp_path: Path) -> None:
    """A file written by another definition of a column is not plotted for it."""
    root = tmp_path / "edited"
    shutil.copytree(sample_project.root / "specs", root / "specs")
    (root / "data").mkdir()
    (root / "data" / "sample").symlink_to(sample_project.root / "data" / "sample")
    shutil.copytree(sample_project.root / "out", root / "out")
    path = root / "specs" / "microstructure.yaml"
    text = path.read_text(encoding="utf-8")
    old = "formula: sqrt(sum(diff(log(trades.price)) ** 2) * periods_per_year)"
    assert text.count(old) == 1
    path.write_text(text.replace(old, "formula: sqrt(sum(diff(log(trades.price)) ** 2))"), encoding="utf-8")
    compile_project(root)
    catalog = build_catalog(load_manifest(root))
    e = _entry(catalog, "realized_vol_30s_spy", "30s")
    assert (
        e.plot is None
        and e.plot_note == "out/features_20131007_30s.parquet holds an earlier definition: run fspec run again"
    )
    assert _entry(catalog, "vwap_30s_spy", "30s").plot is not None


def test_out_is_a_file(sample_project: FspecProject, tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x", encoding="utf-8")
    shown = expect(cli("docs", "--project", sample_project.root, "--out", target), 1)
    assert "is a file, not a folder" in shown and "--out" in shown


def test_docs_needs_a_build(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    assert "fspec compile" in expect(cli("docs", "--project", tmp_path), 1)


def test_selectors_are_run_s(sample_project: FspecProject) -> None:
    catalog = build_catalog(load_manifest(sample_project.root), ["+vwap_deviation_spy"])
    assert {e.column for e in catalog.entries} == {
        f"{n}_{i}s_spy" for n in ("vwap", "vwap_deviation") for i in (30, 60)
    }
    assert "did you mean" in expect(cli("docs", "--project", sample_project.root, "--select", "realized_vo"), 2)


def test_a_universe_s_cross_section_is_drawn_folded(tmp_path: Path) -> None:
    """An index over 200 members: the graph draws LAYER_CAP boxes a layer, the rest one '+N more' box, and the
    lists name the first LINK_CAP columns and how many more."""
    example = Path(__file__).resolve().parents[1] / "examples" / "closing_auction"
    root = tmp_path / "auction"
    shutil.copytree(example / "specs", root / "specs")
    (root / "data").symlink_to(example / "data")
    compile_project(root)
    catalog = build_catalog(load_manifest(root), ["index_wap_stocks"])
    (index,) = catalog.entries
    assert [len(m) for m in with_members(load_manifest(root)).members_of.values()] == [200]
    assert len(index.depends) == LINK_CAP and index.depends_more == 200 - LINK_CAP
    labels = [n.label for n in index.lineage.nodes]
    assert labels.count("+191 more") == 2  # sources and member columns: 9 boxes and the fold each
    drawn = [n.label for n in index.lineage.nodes if n.kind == "feature"]
    assert drawn == [f"wap_10s_s{i}" for i in range(LAYER_CAP - 1)]  # in natural order, beside their sources


def test_an_event_grid_s_columns(tmp_path: Path) -> None:
    """examples/pretrade_fills: one row per fill; the texts are explain's for event grids, the lineage stays in
    the grid, and the plot is the fills of both days' files in order (against pandas)."""
    example = Path(__file__).resolve().parents[1] / "examples" / "pretrade_fills"
    root = tmp_path / "fills"
    shutil.copytree(example / "specs", root / "specs")
    (root / "data").symlink_to(example / "data")
    project = FspecProject(root)
    project.compile()
    written = project.run()
    catalog = build_catalog(load_manifest(root))
    assert len(catalog.entries) == 13 and {e.interval for e in catalog.entries} == {"fills"}
    flag = _entry(catalog, "complete_set_flag_10s_tokens", "fills")
    assert flag.lookahead.startswith("none: every value reads only rows strictly before the event's cut")
    assert {d.label for d in flag.depends} == {"cs_up_shares_10s_tokens", "cs_down_shares_10s_tokens"}
    assert {n.label for n in flag.lineage.nodes if n.kind == "feature"} == {d.label for d in flag.depends}
    target = _entry(catalog, "target_complete_set_flag_10s_tokens", "fills")
    assert target.target and target.lookahead.startswith("a target: reads rows at and after the event's cut")
    frames = [pd.read_parquet(p) for p in sorted(written)]
    values = pd.concat(frames)["mt_last_price_tokens"]
    plot = _entry(catalog, "mt_last_price_tokens", "fills").plot
    assert plot is not None and plot.unit == "events" and plot.days == ("2025-12-14", "2025-12-15")
    finite = values[np.isfinite(values)]
    assert (plot.low, plot.high, plot.last, plot.bars, plot.finite) == (
        finite.min(),
        finite.max(),
        finite.iloc[-1],
        len(values),
        len(finite),
    )
