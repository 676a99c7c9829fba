"""Every project under examples/ compiles, runs, and gives the values an independent pandas computation gives.

Each example is copied to a fresh folder (nothing is written into the repository), compiled once, and run.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO, cli, expect

EXAMPLES = REPO / "examples"


def _copy(name: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp(name) / name
    shutil.copytree(EXAMPLES / name, root, ignore=shutil.ignore_patterns("build", "out", "__pycache__"))
    return root


def test_every_example_is_listed_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for folder in sorted(p for p in EXAMPLES.iterdir() if (p / "specs").is_dir()):
        assert f"examples/{folder.name}/" in readme, f"README does not list examples/{folder.name}/"


# ---- crypto_24h -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def crypto(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = _copy("crypto_24h", tmp_path_factory)
    expect(cli("validate", "--project", root), 0)
    expect(cli("compile", "--project", root), 0)
    expect(cli("run", "--project", root), 0)
    return root


def _capture(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The trades and book-ticker updates of the example's raw capture (lines ``<receive ns> <JSON>``), parsed
    here with the json module, apart from fspec's reader."""
    trades, quotes = [], []
    for path in sorted((root / "data").glob("btcusdt_*.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                received, _, body = line.partition(" ")
                message = json.loads(body)
                data = message.get("data", {})
                if message.get("stream") == "btcusdt@trade":
                    trades.append((int(received), float(data["p"]), float(data["q"]), bool(data["m"])))
                elif message.get("stream") == "btcusdt@bookTicker":
                    quotes.append((int(received), *(float(data[k]) for k in ("b", "B", "a", "A"))))
    return (
        pd.DataFrame(trades, columns=["local_ts_ns", "price", "qty", "is_buyer_maker"]),
        pd.DataFrame(quotes, columns=["local_ts_ns", "bid_px", "bid_qty", "ask_px", "ask_qty"]),
    )


def _crypto_expected(root: Path, day: str, width: int) -> pd.DataFrame:
    """Bars of one UTC day (the session is 00:00-24:00 UTC) from the raw example files, with pandas."""
    trades, quotes = _capture(root)
    assert len(trades) == 19_904 and len(quotes) == 73_174  # the capture's counts (data/README.md)
    start = pd.Timestamp(day, tz="UTC").value
    end = start + 86_400 * 10**9
    n = 86_400 // width
    trades = trades[(trades.local_ts_ns >= start) & (trades.local_ts_ns < end)]
    quotes = quotes[(quotes.local_ts_ns >= start) & (quotes.local_ts_ns < end)]
    t_bar = (trades.local_ts_ns - start) // (width * 10**9)
    r = np.log(trades.price).diff().fillna(0.0)  # the day's first trade has no return
    side = np.where(trades.is_buyer_maker, -1.0, 1.0)
    out = pd.DataFrame(index=range(n))
    by = trades.assign(bar=t_bar, r=r, r2=r**2, signed=trades.qty * side, pq=trades.price * trades.qty).groupby("bar")
    out["volume"] = by.qty.sum().reindex(range(n), fill_value=0.0)
    out["trade_count"] = by.qty.size().reindex(range(n), fill_value=0).astype(float)
    out["vwap"] = (by.pq.sum() / by.qty.sum()).reindex(range(n))
    out["signed_volume"] = by.signed.sum().reindex(range(n), fill_value=0.0)
    out["interval_log_return"] = by.r.sum().reindex(range(n), fill_value=0.0)
    out["rv"] = by.r2.sum().reindex(range(n), fill_value=0.0)
    q_bar = (quotes.local_ts_ns - start) // (width * 10**9)
    mid = ((quotes.bid_px + quotes.ask_px) / 2).groupby(q_bar).last().reindex(range(n)).ffill()
    out["mid"] = mid
    ofi = (quotes.bid_qty.diff().fillna(0.0) - quotes.ask_qty.diff().fillna(0.0)).groupby(q_bar).sum()
    out["ofi"] = ofi.reindex(range(n), fill_value=0.0)
    return out


@pytest.mark.parametrize("day", ["2024-08-08", "2024-08-09"])
@pytest.mark.parametrize("width", [10, 60])
def test_crypto_24h_matches_pandas(crypto: Path, day: str, width: int) -> None:
    got = pd.read_parquet(crypto / "out" / f"features_{day.replace('-', '')}_{width}s.parquet")
    want = _crypto_expected(crypto, day, width)
    assert len(got) == 86_400 // width
    assert got["ts_event"].iloc[0] == pd.Timestamp(day, tz="UTC")
    col = f"_{width}s_btcusdt"
    np.testing.assert_allclose(got["volume" + col], want["volume"], rtol=1e-12)
    np.testing.assert_array_equal(got["trade_count" + col], want["trade_count"])
    np.testing.assert_allclose(got["vwap" + col], want["vwap"], rtol=1e-12)
    np.testing.assert_allclose(got["signed_volume" + col], want["signed_volume"], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got["interval_log_return" + col], want["interval_log_return"], atol=1e-15)
    periods = 365 * 86_400 / width
    np.testing.assert_allclose(got["realized_vol" + col], np.sqrt(want["rv"] * periods), rtol=1e-9)
    np.testing.assert_allclose(got["mid" + col], want["mid"], rtol=1e-15)
    np.testing.assert_allclose(got["ofi" + col], want["ofi"], rtol=1e-9, atol=1e-9)
    assert got["trade_count" + col].sum() > 0  # the day really has data in the example


def test_crypto_24h_splits_the_capture_at_midnight(crypto: Path) -> None:
    """The capture crosses 00:00 UTC: the trades before midnight make 08-08's session, those after it open
    08-09's with no return from the day before."""
    before = pd.read_parquet(crypto / "out" / "features_20240808_10s.parquet")
    after = pd.read_parquet(crypto / "out" / "features_20240809_10s.parquet")
    trades, _ = _capture(crypto)
    midnight = pd.Timestamp("2024-08-09", tz="UTC").value
    assert before["trade_count_10s_btcusdt"].sum() == (trades.local_ts_ns < midnight).sum()
    assert after["trade_count_10s_btcusdt"].sum() == (trades.local_ts_ns >= midnight).sum()


BINANCE = REPO.parent / "shared" / "data" / "binance_btcusdt_hftbacktest"  # the capture and its CSV extracts
EXTRACTS = ("trades.csv.gz", "bbo.csv.gz")
CSV_SOURCES = """
sources:
  trades:
    path: data/trades.csv.gz
    time: {column: local_ts_ns, unit: ns}
    columns:
      price: float64
      size: {from: qty}
      side: {expr: "1 - 2 * is_buyer_maker"}
    filter: "price > 0 and qty > 0"
  quotes:
    path: data/bbo.csv.gz
    time: {column: local_ts_ns, unit: ns}
    columns: {bid: {from: bid_px}, ask: {from: ask_px}, bid_size: {from: bid_qty}, ask_size: {from: ask_qty}}
"""


@pytest.mark.skipif(not all((BINANCE / f).exists() for f in EXTRACTS), reason="the capture's CSV extracts are absent")
def test_crypto_24h_raw_capture_equals_its_csv_extracts(crypto: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The same project over the data set's tidy CSV extracts of the capture, copied unchanged (gzip CSV,
    is_buyer_maker written True/False, read as booleans and used in an expression), writes the very values
    the raw JSON lines give: every column of every file, bit for bit."""
    root = _copy("crypto_24h", tmp_path_factory)
    for name in EXTRACTS:
        shutil.copyfile(BINANCE / name, root / "data" / name)
    project = (root / "specs" / "project.yaml").read_text(encoding="utf-8")
    head, tail = project.split("\nsources:\n")[0], project.split("\ninstruments:\n")[1]
    (root / "specs" / "project.yaml").write_text(f"{head}\n{CSV_SOURCES}\ninstruments:\n{tail}", encoding="utf-8")
    for command in ("validate", "compile", "run"):
        expect(cli(command, "--project", root), 0)
    files = sorted(p.name for p in (crypto / "out").glob("*.parquet"))
    assert files == sorted(p.name for p in (root / "out").glob("*.parquet")) and len(files) == 4
    for name in files:
        raw, extract = pd.read_parquet(crypto / "out" / name), pd.read_parquet(root / "out" / name)
        pd.testing.assert_frame_equal(raw, extract, check_exact=True)


# ---- taq_raw ----------------------------------------------------------------------------------------------

TAQ = REPO.parent / "shared" / "data" / "taq_highfrequency"  # GPL: read where it is, never copied in
TAQ_FILES = ("sampleTDataRaw.csv.gz", "sampleQDataRaw.csv.gz")


@pytest.fixture(scope="module")
def taq(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not all((TAQ / f).exists() for f in TAQ_FILES):
        pytest.skip("the highfrequency TAQ samples are not at hand")
    root = _copy("taq_raw", tmp_path_factory)
    for name in TAQ_FILES:
        (root / "data" / name).symlink_to(TAQ / name)
    expect(cli("validate", "--project", root), 0)
    expect(cli("compile", "--project", root), 0)
    expect(cli("run", "--project", root), 0)
    return root


def _taq_session(frame: pd.DataFrame, day: str) -> tuple[pd.DataFrame, pd.Series]:
    """The rows of ``day``'s New York session, and the 5-minute bar of each."""
    ts = pd.to_datetime(frame["DT"]).dt.tz_localize("UTC").dt.tz_convert("America/New_York")
    open_ = pd.Timestamp(f"{day} 09:30", tz="America/New_York")
    inside = (ts >= open_) & (ts < open_ + pd.Timedelta("6.5h"))
    return frame[inside], ((ts[inside] - open_) // pd.Timedelta("5min"))


@pytest.mark.parametrize("day", ["2018-01-02", "2018-01-03"])
def test_taq_raw_matches_pandas_on_the_files_as_they_come(taq: Path, day: str) -> None:
    raw_trades = pd.read_csv(TAQ / TAQ_FILES[0])
    raw_quotes = pd.read_csv(TAQ / TAQ_FILES[1])
    kept = raw_trades[(raw_trades.EX == "N") & (raw_trades.CORR == 0) & (raw_trades.PRICE > 0) & (raw_trades.SIZE > 0)]
    trades, t_bar = _taq_session(kept, day)
    quotes, q_bar = _taq_session(
        raw_quotes[(raw_quotes.EX == "N") & (raw_quotes.BID > 0) & (raw_quotes.OFR > raw_quotes.BID)], day
    )
    bars = range(78)
    r = np.log(trades.PRICE).diff()
    r.iloc[0] = np.nan  # the session's first trade has no return
    expected = {
        "trade_count": trades.groupby(t_bar).size().reindex(bars, fill_value=0).astype(float),
        "volume": trades.SIZE.groupby(t_bar).sum().reindex(bars, fill_value=0).astype(float),
        "vwap": ((trades.PRICE * trades.SIZE).groupby(t_bar).sum() / trades.SIZE.groupby(t_bar).sum()).reindex(bars),
        "realized_var": (r**2).groupby(t_bar).sum().reindex(bars, fill_value=0.0),
        "mid": ((quotes.BID + quotes.OFR) / 2).groupby(q_bar).last().reindex(bars).ffill(),
        "spread_bps": (
            ((quotes.OFR - quotes.BID) / ((quotes.OFR + quotes.BID) / 2)).groupby(q_bar).mean() * 1e4
        ).reindex(bars),
    }
    got = pd.read_parquet(taq / "out" / f"features_{day.replace('-', '')}_300s.parquet")
    assert len(trades) > 1_000 and len(quotes) > 10_000  # the filters kept a real day
    for name, values in expected.items():
        np.testing.assert_allclose(got[f"{name}_300s_xxx"], values.to_numpy(dtype=float), rtol=1e-12, err_msg=name)
    session = pd.read_parquet(taq / "out" / f"features_{day.replace('-', '')}_session.parquet")
    assert session["trade_count_session_xxx"].iloc[0] == len(trades)


# ---- closing_auction ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def auction(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = _copy("closing_auction", tmp_path_factory)
    expect(cli("validate", "--project", root), 0)
    expect(cli("compile", "--project", root), 0)
    expect(cli("run", "--project", root), 0)
    return root


def _auction_wide(root: Path, day: int) -> dict[str, pd.DataFrame]:
    """The seed's reshaping with pandas: each raw column pivoted to (snapshot, stock)."""
    book = pd.read_parquet(root / "data" / "book.parquet")
    stocks = sorted(book.stock_id.unique())
    one = book[book.date_id == day].pivot(index="seconds_in_bucket", columns="stock_id")
    return {c: one[c].reindex(index=range(0, 550, 10), columns=stocks) for c in one.columns.levels[0]}


@pytest.mark.parametrize("day", [0, 1, 2])
def test_closing_auction_matches_a_pandas_pivot(auction: Path, day: int) -> None:
    got = pd.read_parquet(auction / "out" / f"features_2023010{day + 2}_10s.parquet")
    wide = _auction_wide(auction, day)
    stocks = list(wide["wap"].columns)
    assert len(got) == 55 and len(stocks) == 200
    # columns in natural order: s0, s1, s2, ..., s10, ..., s199
    assert [c for c in got.columns if c.startswith("wap_10s_")] == [f"wap_10s_s{s}" for s in stocks]
    wap = wide["wap"]
    prev = wap.shift(1)  # within the day: the first snapshot has no return
    ret = (wap / prev - 1) * 1e4
    weight = pd.read_csv(auction / "data" / "weights.csv").set_index("stock_id")["weight"].reindex(stocks)
    present = wap.notna()  # the weights renormalised over the stocks present at the snapshot
    index = (wap * weight).sum(axis=1) / present.mul(weight).sum(axis=1)
    n = ret.count(axis=1)
    rank = ret.rank(axis=1, method="average").sub(1).div(n - 1, axis=0)
    target = (wap.shift(-6) / wap).sub(index.shift(-6) / index, axis=0) * 1e4
    imbalance = wide["imbalance_size"] * wide["imbalance_buy_sell_flag"] / wide["matched_size"]
    book_imbalance = (wide["bid_size"] - wide["ask_size"]) / (wide["bid_size"] + wide["ask_size"])
    expected = {
        "wap": wap,
        "far_price": wide["far_price"],
        "imbalance_ratio": imbalance,
        "book_imbalance": book_imbalance,
        "spread_bps": (wide["ask_price"] - wide["bid_price"]) / wap * 1e4,
        "wap_return_bps": ret,
        "wap_rank": rank,
        "target_one_minute": target,
    }
    for name, frame in expected.items():
        for stock in stocks:
            np.testing.assert_allclose(
                got[f"{name}_10s_s{stock}"],
                frame[stock].to_numpy(dtype=float),
                rtol=1e-11,
                atol=1e-9,  # basis points of differences of near-equal prices: cancellation, not error
                equal_nan=True,
                err_msg=f"{name} s{stock}",
            )
    # the index: one column without a member suffix (a cross-section over the universe)
    np.testing.assert_allclose(got["index_wap_stocks_10s"], index.to_numpy(), rtol=1e-12)
    np.testing.assert_array_equal(got["far_valid_10s_s0"], (np.arange(55) * 10 >= 300).astype(float))
    assert got["far_price_10s_s0"].iloc[:30].isna().all() and got["far_price_10s_s0"].iloc[30:].notna().all()
    if day == 1:
        assert got["wap_10s_s17"].isna().all()  # stock 17 has no rows that day


def test_closing_auction_spec_tests_pass(auction: Path) -> None:
    """The example's spec tests (a universe's member, the cross-section over the given stocks, two dates)."""
    out = expect(cli("test", "--project", auction), 0)
    assert "PASS a member's book features and its rank among the stocks (15 value(s))" in out
    assert "PASS the wap return never reaches into the previous day (6 value(s))" in out


AUCTION_PROBLEMS = """\
spec_version: 1
tests:
  - name: the universe itself
    date: "2023-01-02"
    instrument: stocks
    given:
      book: []
    expect:
      wap: [1.0]
  - name: a member without rows
    date: "2023-01-02"
    member: 99
    given:
      book:
        - {stock_id: 17, date_id: 0, seconds_in_bucket: 0, wap: 10.0, bid_price: 9.9, ask_price: 10.1,
           bid_size: 300, ask_size: 100, reference_price: 10.0, far_price: null, near_price: null,
           matched_size: 1000, imbalance_size: 200, imbalance_buy_sell_flag: -1}
    expect:
      wap: [10.0]
  - name: a bar without its date
    dates: ["2023-01-02", "2023-01-03"]
    member: 17
    given:
      book:
        - {stock_id: 17, date_id: 0, seconds_in_bucket: 0, wap: 10.0, bid_price: 9.9, ask_price: 10.1,
           bid_size: 300, ask_size: 100, reference_price: 10.0, far_price: null, near_price: null,
           matched_size: 1000, imbalance_size: 200, imbalance_buy_sell_flag: -1}
    expect:
      wap: {"15:50:00": 10.0}
"""


def test_closing_auction_spec_test_mistakes_are_reported(auction: Path) -> None:
    path = auction / "specs" / "problems.test.yaml"
    path.write_text(AUCTION_PROBLEMS, encoding="utf-8")
    try:
        out = expect(cli("test", "--project", auction), 1)
    finally:
        path.unlink()
    for line in [
        "specs/problems.test.yaml:5:17: test 'the universe itself': 'stocks' is a universe: say which of its members",
        "specs/problems.test.yaml:12:13: test 'a member without rows': no member with symbol '99' in the given rows",
        "    hint: the given rows hold 17",
        "specs/problems.test.yaml:29:13: test 'a bar without its date': '15:50:00' is on no date of the test",
    ]:
        assert line in out, out


# ---- pretrade_fills -------------------------------------------------------------------------------------------


def test_pretrade_fills_spec_tests_pass(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The example's spec test of its event grid: one value per fill, strictly before it, and the seed's
    bucket label flagging a fill by a later one."""
    root = _copy("pretrade_fills", tmp_path_factory)
    expect(cli("compile", "--project", root), 0)
    out = expect(cli("test", "--project", root), 0)
    assert out == "PASS market context strictly before each fill (30 value(s))\n1 passed, 0 failed\n", out


# ---- lean_raw -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = _copy("lean_raw", tmp_path_factory)
    expect(cli("validate", "--project", root, "--data"), 0)
    expect(cli("compile", "--project", root), 0)
    expect(cli("run", "--project", root), 0)
    return root


@pytest.mark.parametrize("width", [30, 60])
def test_lean_raw_zips_give_the_converted_samples_columns(lean: Path, sample_project, width: int) -> None:
    """The same SPY day read from LEAN's zips as they come and from the parquet files data/prepare_sample.py
    made of them (prices / 10,000 there, scale: 0.0001 here, which divides too): the same columns."""
    got = pd.read_parquet(lean / "out" / f"features_20131007_{width}s.parquet")
    shipped = sample_project.output("2013-10-07", width)
    names = ["spread_pct", "volume", "trade_count", "vwap", "ofi", "realized_vol", "vwap_deviation"]
    for name in names:
        column = f"{name}_{width}s_spy"
        np.testing.assert_allclose(got[column], shipped[column], rtol=1e-12, atol=1e-15, err_msg=column)
    log_mid = shipped[f"log_mid_price_{width}s_spy"]  # the shipped project publishes mid as its log
    np.testing.assert_allclose(np.log(got[f"mid_{width}s_spy"]), log_mid, rtol=1e-12, err_msg="mid")
    bars = pd.read_csv(lean / "data/equity/usa/minute/spy/20131007_trade.zip", header=None)
    # a minute bar is known when it ends (ms after the open), and then falls in the bar [t, t + width) holding
    # that instant: the bar of 09:30 is known at 09:31:00, in the bar that starts then
    known = bars[0] + 60_000 - 9.5 * 3_600_000
    inside = (known >= 0) & (known < 6.5 * 3_600_000)
    by_bar = bars[5][inside].groupby((known[inside] // (width * 1000)).astype(int)).sum()
    expected = by_bar.reindex(range(23_400 // width), fill_value=0.0).to_numpy(dtype=float)
    np.testing.assert_array_equal(got[f"minute_volume_{width}s_spy"], expected)
