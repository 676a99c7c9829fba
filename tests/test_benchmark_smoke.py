"""The benchmark at a tiny size: fspec, pandas and polars agree on every feature (relative 1e-9, same NaN
pattern), including empty bars (4,000 ticks per instrument over 780 bars), and the command runs."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("polars")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is not an installed package

from conftest import FspecProject

from benchmarks import bars, kernels
from benchmarks import project as bench_project
from fspec.compiler.build import compile_project

ROWS = 20_000


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    setup = bars.prepare(ROWS, 5, 7, 30, tmp_path_factory.mktemp("bench"), list(bars.ENGINES))
    return {engine: bars.runner(engine, setup)() for engine in bars.ENGINES}


def test_engines_agree(results: dict[str, dict]) -> None:
    reference = {k: v for k, v in results["fspec"].items() if k[0] != "mid"}
    agreement = bars.compare(reference, {e: results[e] for e in ("pandas", "polars", "polars-tuned")})
    assert agreement.problems == []
    assert agreement.values > 100_000


def test_workload_has_empty_bars_and_every_feature(results: dict[str, dict]) -> None:
    fspec = results["fspec"]
    assert (fspec[("trade_count", "s0")] == 0).any()  # empty bars exist at this size
    assert np.isnan(fspec[("vwap", "s0")]).any()
    names = {k[0] for k in results["pandas"]}
    assert names == {k[0] for k in fspec if k[0] != "mid"}
    assert ("ret_corr_s0_s1", None) in fspec


def test_compare_finds_a_difference() -> None:
    a = {("x", "s0"): np.array([1.0, np.nan, 3.0])}
    assert bars.compare(a, {"e": {("x", "s0"): np.array([1.0, np.nan, 3.0 * (1 + 1e-8)])}}).problems
    assert bars.compare(a, {"e": {("x", "s0"): np.array([1.0, 2.0, 3.0])}}).problems
    assert not bars.compare(a, {"e": {("x", "s0"): np.array([1.0, np.nan, 3.0 * (1 + 1e-12)])}}).problems


def test_command_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bars.main(["--rows", "10k", "--repeat", "1", "--no-memory", "--profile", "--workdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "agreement" in out and ": OK;" in out
    assert "| 10,000 | fspec |" in out and "| 10,000 | floor-1t |" in out


def test_kernel_ab_times_agreeing_files_and_refuses_others(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = bench_project.write_project(tmp_path / "p", ["s0", "s1"])
    compile_project(root)
    (kernel,) = (root / "build" / "kernels").glob("*.py")
    text = kernel.read_text(encoding="utf-8")
    unprefetched = tmp_path / "no_prefetch.py"
    unprefetched.write_text("".join(line for line in text.splitlines(True) if "prefetch(" not in line))
    assert kernels.main([str(kernel), str(unprefetched), "--ticks", "20k", "--rounds", "2"]) == 0
    out = capsys.readouterr().out
    assert "20,000 ticks" in out and "no_prefetch.py" in out and out.count(" median ") == 2
    wrong = tmp_path / "wrong.py"
    first_sum = re.search(r"^ +(sum_\w+) \+= ", text, re.MULTILINE)  # a slot's accumulator, named after it
    assert first_sum is not None
    wrong.write_text(text.replace(f"{first_sum[1]} += ", f"{first_sum[1]} -= ", 1))
    with pytest.raises(SystemExit, match="disagrees"):
        kernels.main([str(kernel), str(wrong), "--ticks", "20k", "--rounds", "1"])


def test_implied_vol_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import implied_vol

    assert implied_vol.main(["--contracts", "2k", "--runs", "1", "--oracle-sample", "200"]) == 0
    out = capsys.readouterr().out
    assert "2,000 contracts, 1 fresh processes" in out
    assert "| fspec.options (numba) |" in out and "| 2,000 of 2,000 |" in out
    assert "lets-be-rational (Python), 200 contracts" in out and "load average" in out


def test_implied_vol_benchmark_contracts_span_the_range() -> None:
    from benchmarks import implied_vol

    c = implied_vol.contracts(20_000, 16)
    assert c["T"].min() < 2 * implied_vol.FIVE_MINUTES and c["T"].max() > 4.0
    z = np.log(c["F"] / c["K"]) / (c["sigma"] * np.sqrt(c["T"]))
    assert z.min() < -2.9 and z.max() > 2.9
    assert 0.45 < c["is_call"].mean() < 0.55
    assert (c["price"] > 0).all()


def test_dask_scale_runs_at_a_tiny_size(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("distributed")
    from benchmarks import dask_scale

    argv = ["--days", "2", "--instruments", "3", "--rows", "2k", "--workers", "1", "2", "--groups", "0", "1"]
    argv += ["--days-per-task", "1", "2"]
    assert dask_scale.main([*argv, "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "2 days of 3 instruments" in out
    rows = {
        line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[2:-1]]
        for line in out.splitlines()
        if line.startswith("| dask") or line.startswith("| local")
    }
    assert set(rows) == {"local", "dask 1", "dask 2", "dask 1 x 2", "dask 2 x 2", "dask 1 / 1", "dask 2 / 1"}
    assert rows["dask 2 x 2"][3] == "1"  # both days in one task
    assert rows["dask 1"][1:3] == ["1.00x", "100%"] and rows["dask 2"][7].endswith(" ms")
    assert rows["dask 1"][3] == "2" and rows["dask 1"][5] == ""  # a task per day, which writes its day
    # s0 and s1 are linked by a cross-asset feature: 2 groups and a write step a day
    assert rows["dask 2 / 1"][3] == "6" and rows["dask 2 / 1"][5].endswith(" s")


def test_auction_panel_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import auction_panel

    assert auction_panel.main(["--stocks", "18", "--days", "2", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "18 stocks x 2 days x 55 snapshots (1,925 rows)" in out
    assert "outputs agree (2 files of 290 columns; every column of days [0, 1])" in out
    assert "round 1 (load " in out and "load average " in out
    assert "| pandas pivot |" in out and "| polars lazy |" in out and "| fspec | " in out


def test_auction_panel_table_has_the_example_schema() -> None:
    import pyarrow.parquet as pq

    from benchmarks import auction_panel

    table = auction_panel.generate(20, 3)
    example = pq.read_schema(auction_panel.EXAMPLE.parent / "data" / "book.parquet")
    assert table.schema.equals(example.remove_metadata())
    book = table.to_pandas()
    present = book.groupby("date_id")["stock_id"].unique()
    assert 17 not in present[1] and 17 in present[0] and len(present[1]) == 19
    assert (book.groupby(["date_id", "stock_id"]).size() == 55).all()
    assert (book.loc[book.seconds_in_bucket == 0, "wap"] == 1.0).all()  # normalised at the first snapshot
    late = book.seconds_in_bucket >= 300
    assert book.loc[~late, "far_price"].isna().all() and book.loc[late, "near_price"].notna().all()
    assert (book.bid_price < book.ask_price).all() and set(book.imbalance_buy_sell_flag) == {-1, 0, 1}
    assert list(book.date_id.iloc[:21]) == [0] * 21 and list(book.stock_id.iloc[:3]) == [0, 1, 2]  # by second
    assert auction_panel.checked_days(480) == [0, 1, 69, 307, 433, 479]  # 2023-03-12 is day 69


def test_auction_panel_check_finds_a_difference(tmp_path: Path) -> None:
    import shutil
    import subprocess

    import pyarrow as pa
    import pyarrow.parquet as pq

    from benchmarks import auction_panel

    root = tmp_path / "p"
    auction_panel.build(root, 18, 2)
    subprocess.run(auction_panel.programs(root)["pandas pivot"], check=True)
    for copy in ("out", "out_polars"):
        shutil.copytree(root / "out_pandas", root / copy)
    assert auction_panel.check_agreement(root, 2) == [0, 1]
    path = root / "out_polars" / "features_20230103_10s.parquet"
    table = pq.read_table(path)
    for column, factor in (("target_one_minute_10s_s3", 1 + 1e-13), ("wap_rank_10s_s3", 1 + 1e-11)):
        values = table[column].to_numpy().copy()
        values[10] *= factor
        table = table.set_column(table.column_names.index(column), column, pa.array(values))
        pq.write_table(table, path)
        if column.startswith("target_"):  # within the target's tolerance
            assert auction_panel.check_agreement(root, 2) == [0, 1]
        else:
            with pytest.raises(SystemExit, match="disagrees on wap_rank_10s_s3 at row 10"):
                auction_panel.check_agreement(root, 2)


def test_event_grid_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """The event-grid benchmark at a tiny size: the three programs agree (it exits otherwise), the table is printed."""
    from benchmarks import event_grid

    assert event_grid.main(["--events", "2k", "--trades", "20k", "--tokens", "5", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "outputs agree" in out and "| polars join_asof |" in out and "| numpy (seed, strict) |" in out


def test_the_edit_loop_benchmarks_projects_are_valid(tmp_path: Path) -> None:
    """benchmarks/edit_loop.py: the 240 generated features validate over the shipped project's instruments, and
    its edit of signed_volume's constant still finds its place in the shipped specs."""
    from benchmarks import edit_loop
    from fspec.compiler.build import check

    checked = check(edit_loop.cold_project(tmp_path / "cold", 240))
    assert checked.plan is not None, [d.render() for d in checked.diagnostics]
    assert len(checked.plan.features) == 240
    micro = (edit_loop.REPO / "specs" / "microstructure.yaml").read_text(encoding="utf-8")
    assert len(re.findall(r"(/ 2, )1(,\s*\n\s*where)", micro)) == 1


def test_chain_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """benchmarks/chain.py end to end on a small chain (120 contracts requoted every 30 s): fspec and the pandas
    peer agree on the ten features of both grids, and the rounds table is printed."""
    from benchmarks import chain

    assert chain.main(["--contracts", "120", "--trades", "800", "--every", "30", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "120 contracts, 93,600 quotes, 800 trades" in out
    assert "outputs agree" in out and "| pandas |" in out


def test_many_days_benchmark_runs_and_checks_the_day(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A run of the last day against the run of every day: both the day file and its row groups (one a day)."""
    from benchmarks import many_days

    argv = ["--rows", "3k", "--instruments", "3", "--days", "3", "--repeat", "1", "--scratch", str(tmp_path)]
    assert many_days.main([*argv, "--baseline", sys.executable]) == 0
    out = capsys.readouterr().out
    assert "data/all_trades.parquet: 3 row groups" in out
    assert re.search(r"round 1 \(load [0-9.]+\): this fspec: [0-9.]+ s wall, [0-9.]+ s CPU, [0-9,]+ MiB, baseline", out)


def test_regroup_moves_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import regroup_moves

    assert regroup_moves.main(["--rows", "100k", "--symbols", "5", "--columns", "3", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "round 1: one pass a column:" in out and "round 1: two columns a pass:" in out


def test_scale_benchmark_reports_wall_and_cpu(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import scale

    assert scale.main(["--rows", "4k", "--instruments", "2", "6", "--days", "1", "2", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"round 1 \(load [\d.]+\): 2 instruments, 1 day: [\d.]+ s \([\d.]+ s CPU\)", out)
    rows = [line for line in out.splitlines() if line.startswith("| 6 instruments, 1 day |")]
    assert len(rows) == 1 and len(rows[0].split("|")) == 8  # wall, its range, CPU, its range, memory
    cpu = re.search(r"6 vs 2 instruments, CPU time per round: ([\d.]+)x", out)
    assert cpu is not None and float(cpu.group(1)) > 0


def test_startup_benchmark_marks_the_run_s_first_kernel_call(sample_project: FspecProject, tmp_path: Path) -> None:
    """The child of benchmarks/startup.py sees the run's first kernel call (a stale wrapping sees none)."""
    import json
    import subprocess

    from benchmarks import startup

    marks = tmp_path / "marks.json"
    run = ["run", "--project", str(sample_project.root), "--out", str(tmp_path / "out")]
    subprocess.run([sys.executable, "-c", startup.CHILD, str(marks), *run], check=True, capture_output=True)
    found = json.loads(marks.read_text())
    assert found["entry"] <= found["return"] <= found["exit"]


def test_e2e_benchmark_runs_with_the_aot_copy(capsys: pytest.CaptureFixture[str]) -> None:
    """benchmarks/e2e.py at a tiny size with --aot: the outputs agree (the --aot copy's bytes are the numba run's)
    and both fspec runs are timed against polars."""
    from benchmarks import e2e

    assert e2e.main(["--rows", "20k", "--repeat", "1", "--aot"]) == 0
    out = capsys.readouterr().out
    assert "outputs agree on 71 columns" in out
    assert "polars tuned / fspec run per round" in out and "polars tuned / fspec run, aot per round" in out
