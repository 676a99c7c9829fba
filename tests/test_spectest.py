"""`fspec test`: spec unit tests beside the specs, on the project `fspec init` writes (compiled once here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fspec.compiler.build import compile_project
from fspec.scaffold import init_project
from tests.conftest import cli, expect

WRONG = """\
spec_version: 1
tests:
  - name: wrong on purpose
    date: "2024-01-02"
    given:
      trades:
        - {ts: "09:30:01", price: 100.0, size: 100}
        - {ts: "09:30:10", price: 101.0, size: 300}
      quotes: []
    expect:
      vwap: [100.5]
      volume: {"09:30:30": 5}
      last_price: [101.0, 101.0]
"""

PROBLEMS = """\
spec_version: 1
tests:
  - name: problems
    date: "2024-01-02"
    given:
      trades:
        - {ts: "09:75", price: 100.0, size: 100, sise: 1}
        - {ts: "09:30:02", price: 100.0}
    expect:
      vwapp: [1.0]
      spread_ticks: [2.0]
      volume: {"09:30:10": 1.0}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("spectest") / "p"
    init_project(root)
    compile_project(root)
    return root


@pytest.fixture
def extra_test(project: Path):
    """Write one more test file for a test, removed afterwards."""
    written: list[Path] = []

    def write(name: str, text: str) -> Path:
        path = project / "specs" / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
        return path

    yield write
    for path in written:
        path.unlink()


def test_the_init_projects_spec_test_passes(project: Path) -> None:
    out = expect(cli("test", "--project", project), 0)
    assert out == "PASS vwap weights trades by size (12 value(s))\n1 passed, 0 failed\n"


def test_a_failing_test_prints_the_column_the_row_and_both_values(project: Path, extra_test) -> None:
    extra_test("wrong.test.yaml", WRONG)
    out = expect(cli("test", "--project", project), 1)  # a new test file does not make the build stale
    assert "FAIL wrong on purpose at specs/wrong.test.yaml:3:11" in out
    assert "    vwap_30s_abc row 0 (bar 09:30:00): expected 100.5, got 100.75\n" in out
    assert "    volume_30s_abc row 1 (bar 09:30:30): expected 5, got 0.0\n" in out
    assert "last_price" not in out  # it holds
    assert out.endswith("1 passed, 1 failed\n")


def test_values_are_exact_unless_a_tolerance_is_given(project: Path, extra_test) -> None:
    # 100.01 - 99.99 is 0.020000000000010232 in floating point: 2 ticks only within a tolerance
    text = (project / "specs" / "features.test.yaml").read_text(encoding="utf-8")
    extra_test("exact.test.yaml", text.replace("vwap weights", "exact").replace(" spread_ticks: 1.0e-9,", ""))
    out = expect(cli("test", "--project", project), 1)
    assert "spread_ticks_30s_abc row 0 (bar 09:30:00): expected 2, got 2.000000000001023" in out
    assert "PASS vwap weights trades by size" in out


def test_problems_in_test_files_are_reported_with_positions(project: Path, extra_test) -> None:
    extra_test("problems.test.yaml", PROBLEMS)
    extra_test("schema.test.yaml", "spec_version: 1\ntests:\n  - name: x\n    date: 2024-01-02\n    given: {}\n")
    out = expect(cli("test", "--project", project), 1)
    for line in [
        "specs/problems.test.yaml:7:16: test 'problems': the time '09:75' is not a time",
        "specs/problems.test.yaml:7:50: test 'problems': 'sise' is not a column 'trades' reads from its file",
        "specs/problems.test.yaml:8:11: test 'problems': the row has no 'size'",
        "specs/problems.test.yaml:10:7: test 'problems': no column 'vwapp' at 30s for abc",
        "specs/problems.test.yaml:12:16: test 'problems': no bar starts at 09:30:10 on the 30s grid",
        "specs/schema.test.yaml:3:5: 'expect' is a required property in tests/0",
        "specs/schema.test.yaml:5:12: invalid value at tests/0/given: {} should be non-empty",
    ]:
        assert line in out, out
    assert expect(cli("validate", "--project", project), 0).startswith("ok: ")  # tests are not specs


def test_a_source_the_columns_read_needs_rows(project: Path, extra_test) -> None:
    extra_test("rows.test.yaml", WRONG.replace("      quotes: []\n", "").replace("last_price", "spread_ticks"))
    out = expect(cli("test", "--project", project), 1)
    assert "test 'wrong on purpose': no rows for 'quotes', which the expected columns read" in out
    assert "add quotes: [...] (or [])" in out


def test_the_documented_example_passes(project: Path, extra_test) -> None:
    docs = (Path(__file__).resolve().parents[1] / "docs" / "writing-features.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n# specs/features.test.yaml\n(.*?)```", docs, flags=re.S)
    assert block, "docs/writing-features.md has no spec test example"
    extra_test("doc.test.yaml", block.group(1).replace("name: vwap weights trades by size", "name: the docs' example"))
    out = expect(cli("test", "--project", project), 0)
    assert "PASS the docs' example (4 value(s))" in out


LONG_PROJECT = """\
spec_version: 1
sources:
  trades:
    path: data/{date}_trades.parquet      # one file of every symbol
    symbol: sym
    time: ts
    columns: {price: float64, size: float64}
    filter: "side == 'BUY'"
instruments:
  aaa: {symbol: AAA}
  bbb: {symbol: BBB}
intervals: [60s]
session: {timezone: America/New_York, open: "09:30", close: "10:00"}
"""
LONG_TEST = """\
spec_version: 1
tests:
  - name: two instruments share one file, and a filter compares text
    instrument: aaa
    date: "2024-03-04"
    given:
      trades:
        - {ts: "09:30:05", price: 10.0, size: 5, side: BUY}
        - {ts: "09:30:06", price: 10.0, size: 7, side: SELL}
      bbb.trades:
        - {ts: "09:30:30", price: 20.0, size: 2, side: BUY}
        - {ts: "2024-03-04T14:31:10Z", price: 20.0, size: 3, side: BUY}
    expect:
      volume: [5, 0]
      volume_bbb: [2, 3, 0]
"""


def test_rows_of_a_file_of_many_symbols_and_text_columns(tmp_path: Path) -> None:
    root = tmp_path / "long"
    (root / "specs").mkdir(parents=True)
    (root / "specs" / "project.yaml").write_text(LONG_PROJECT, encoding="utf-8")
    (root / "specs" / "features.yaml").write_text(
        "spec_version: 1\nfeatures:\n  - name: volume\n    formula: sum(trades.size)\n", encoding="utf-8"
    )
    (root / "specs" / "long.test.yaml").write_text(LONG_TEST, encoding="utf-8")
    compile_project(root)
    out = expect(cli("test", "--project", root), 0)
    assert out.startswith("PASS two instruments share one file, and a filter compares text (5 value(s))\n"), out


DAYS_TEST = """\
spec_version: 1
tests:
  - name: the second session's first bar reads the first session's last
    instrument: aaa
    dates: ["2024-03-04", "2024-03-05"]
    given:
      trades:
        - {ts: "2024-03-04 09:59:10", price: 10.0, size: 5, side: BUY}
        - {ts: "2024-03-05 09:30:05", price: 10.0, size: 7, side: BUY}
        - {ts: "2024-03-05T14:31:10Z", price: 10.0, size: 2, side: BUY}
    expect:
      prev_volume: {"2024-03-04": [null, 0], "2024-03-05 09:30:00": 5, "2024-03-05 09:31:00": 7}
      volume: [7, 2, 0]                         # a list: the last date's bars
      sum_3: {"2024-03-05 09:30:00": 12, "2024-03-05 09:32:00": 9}
"""


def _days_project(tmp_path: Path, test: str) -> Path:
    root = tmp_path / "days"
    (root / "specs").mkdir(parents=True)
    (root / "specs" / "project.yaml").write_text(LONG_PROJECT, encoding="utf-8")
    features = (
        "spec_version: 1\nfeatures:\n  - name: volume\n    formula: sum(trades.size)\n"
        "  - name: prev_volume\n    formula: lag(volume, 1)\n"
        "  - name: sum_3\n    formula: rolling_sum(volume, 3)\n"
    )
    (root / "specs" / "features.yaml").write_text(features, encoding="utf-8")
    (root / "specs" / "days.test.yaml").write_text(test, encoding="utf-8")
    compile_project(root)
    return root


def test_several_dates_each_after_the_ones_before(tmp_path: Path) -> None:
    """dates: the sessions in order on one engine: a later one's warm-up (lag, rolling windows) reads the earlier
    sessions' bars, as `fspec run` over those dates would; rows and bars carry their date."""
    root = _days_project(tmp_path, DAYS_TEST)
    out = expect(cli("test", "--project", root), 0)
    assert out.startswith("PASS the second session's first bar reads the first session's last (9 value(s))"), out
    wrong = DAYS_TEST.replace('"2024-03-05 09:30:00": 5,', '"2024-03-05 09:30:00": 6,')
    (root / "specs" / "days.test.yaml").write_text(wrong, encoding="utf-8")
    out = expect(cli("test", "--project", root), 1)
    assert "    prev_volume_60s_aaa row 0 (bar 2024-03-05 09:30:00): expected 6, got 5.0\n" in out, out


def test_a_time_of_day_alone_is_a_mistake_in_a_test_of_several_dates(tmp_path: Path) -> None:
    text = DAYS_TEST.replace('"2024-03-05 09:30:05"', '"09:30:05"').replace(
        'dates: ["2024-03-04", "2024-03-05"]', 'dates: ["2024-03-05", "2024-03-04"]'
    )
    root = _days_project(tmp_path, text)
    out = expect(cli("test", "--project", root), 1)
    assert "test 'the second session's first bar reads the first session's last': dates: are not in order" in out, out
    root2 = _days_project(tmp_path / "b", DAYS_TEST.replace('"2024-03-05 09:30:05"', '"09:30:05"'))
    out = expect(cli("test", "--project", root2), 1)
    assert "the time '09:30:05' is not a time of the test's dates" in out, out
    assert 'hint: write its date and time of day ("2024-03-05 09:30:01.250", quoted) or an ISO time' in out, out


def test_more_values_than_bars_is_a_mistake(tmp_path: Path) -> None:
    """A list is checked against the last date's bars (30 of 1 minute here), a date's list against its own."""
    too_many = "[" + ", ".join(["0"] * 31) + "]"
    text = DAYS_TEST.replace("volume: [7, 2, 0]", f"volume: {too_many}").replace(
        '"2024-03-04": [null, 0]', f'"2024-03-04": {too_many}'
    )
    out = expect(cli("test", "--project", _days_project(tmp_path, text)), 1)
    assert out.count("31 values for a session of 30 bars") == 2, out


# ---- the shipped library's own spec tests ---------------------------------------------------------------

# One feature of each family the shipped specs/*.test.yaml must test (bars, quotes, returns, volatility, order
# flow, minute bars, cross-asset, responders, the option chain, targets).
FAMILIES = {
    "volume", "vwap", "micro_price", "interval_log_return", "ret_lag_1", "realized_vol", "bipower_var",
    "signed_volume", "ofi", "minute_rv", "basis_mes_spy", "resp_mid_5", "iv_atm", "target_next_window_return",
}  # fmt: skip


def test_the_shipped_librarys_spec_tests_pass(sample_project) -> None:
    """`fspec test` on the shipped specs with their spec tests: every test passes, the families are covered, and
    a test whose expected value is off by one share fails naming the column, the row and both values."""
    import yaml

    from tests.conftest import shipped_spec_tests

    tests = shipped_spec_tests()
    specs = sample_project.root / "specs"
    expected: set[str] = set()
    count = 0
    for name, text in tests.items():
        (specs / name).write_text(text, encoding="utf-8")
        for t in yaml.safe_load(text)["tests"]:
            expected |= set(t["expect"])
            count += 1
    wrong = specs / "wrong.test.yaml"
    try:
        out = expect(cli("test", "--project", sample_project.root), 0)
        assert out.endswith(f"{count} passed, 0 failed\n"), out
        assert not FAMILIES - expected, FAMILIES - expected
        text = tests["microstructure.test.yaml"]
        assert "volume: [600.0, 100.0" in text
        mutated = yaml.safe_load(text.replace("volume: [600.0, 100.0", "volume: [601.0, 100.0"))
        mutated["tests"] = [dict(mutated["tests"][0], name="off by one share")]
        wrong.write_text(yaml.safe_dump(mutated, sort_keys=False), encoding="utf-8")
        out = expect(cli("test", "--project", sample_project.root), 1)
        assert "volume_30s_spy row 0 (bar 09:30:00): expected 601.0, got 600.0" in out, out
        assert out.endswith(f"{count} passed, 1 failed\n"), out
    finally:
        wrong.unlink(missing_ok=True)
        for name in tests:
            (specs / name).unlink()
