"""fspec.options: the numba "Let's Be Rational" against the ``lets-be-rational`` package (vollib's pure-Python
port of Jäckel's reference code, a test-only dependency), round trips, Greeks, statuses and the forward.

The oracle grid: forward 100, expiries from 5 minutes to 5 years, calls and puts, volatilities from 1% to
300%, and strikes two ways: ln(F/K) = m·√T for m in [-3, 3] (fixed in "years-scaled" moneyness, so a low
volatility makes them very deep in or out of the money), and ln(F/K) = z·σ√T for z in [-8, 8] (standard
deviations, deep but with prices that still carry information), plus some |ln(F/K)| from 5 to 50 with large
volatilities (the asymptotic region of the Black function). The input prices are the oracle's own Black
prices. Where the package gives a volatility (it raises for a price at or above the maximum, as it may when
rounding puts a deep in-the-money price there, or returns 0 at intrinsic) and the normalised time value,
(price - intrinsic)/√(FK), is at least 1e-300 (not subnormal or underflowed to 0), a point is compared if

- the price determines σ to 1e-12: the rounding of the price alone moves σ by eps·price/(σ·vega), and that is
  at most 1e-12 ("well conditioned"). The relative difference must be at most 1e-12 (the issue's bound);
- or it is deep in the money (time value below 1% of the price) and not within 1e-6 of its maximum: there σ
  is only in the last digits of the price, but both implementations subtract the same intrinsic value, so
  they must still agree to 1e-12.

Left out (58 grid points) are ill-conditioned prices within 1e-6 of their maximum (F for a call, K for a put,
reached at large σ√T): σ is in the last digits of max - price, where the two compute b(x, s) with different
roundings; at the worst grid point (ln(F/K) = -50, σ√T = 20) the price's rounding alone leaves σ uncertain
by 5e-5, and the two differ by 1e-6.
"""

from __future__ import annotations

import math
from pathlib import Path

import lets_be_rational as oracle
import numpy as np
import pytest

from fspec.options import black76, forward, normal
from fspec.options import lets_be_rational as lbr
from fspec.options.black76 import ABOVE_MAXIMUM, BAD_INPUT, BELOW_INTRINSIC, CROSSED, NO_QUOTE, OK

MINUTE = 1.0 / (365.0 * 24.0 * 60.0)
EXPIRIES = [5 * MINUTE, 60 * MINUTE, 1 / 365, 7 / 365, 30 / 365, 91 / 365, 1.0, 2.0, 5.0]
SIGMAS = [0.01, 0.05, 0.1, 0.2, 0.4, 0.8, 1.5, 3.0]
F0 = 100.0


def _grid() -> dict[str, np.ndarray]:
    rows = []
    for T in EXPIRIES:
        for sigma in SIGMAS:
            for q in (1.0, -1.0):
                for m in np.linspace(-3.0, 3.0, 25):
                    rows.append((m * math.sqrt(T), T, sigma, q))
                for z in np.linspace(-8.0, 8.0, 33):
                    rows.append((z * sigma * math.sqrt(T), T, sigma, q))
    for x in (-50.0, -20.0, -10.0, -5.0, 5.0, 10.0, 20.0, 50.0):
        for s in (2.0, 5.0, 10.0, 20.0, 40.0):
            for q in (1.0, -1.0):
                rows.append((x, 1.0, s, q))
    x, T, sigma, q = (np.array(c) for c in zip(*rows, strict=True))
    K = F0 * np.exp(-x)
    price = np.array([oracle.black(F0, k, s, t, qq) for k, s, t, qq in zip(K, sigma, T, q, strict=True)])
    return {"x": x, "K": K, "T": T, "sigma": sigma, "q": q, "price": price}


def _oracle_iv(price: float, K: float, T: float, q: float) -> float:
    try:
        return oracle.implied_volatility_from_a_transformed_rational_guess(price, F0, K, T, q)
    except Exception:  # BelowIntrinsicException, AboveMaximumException
        return math.nan


def _with_oracle(g: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Adds the oracle's implied volatilities and the mask of points where the price carries information."""
    g["oracle"] = np.array(
        [_oracle_iv(p, k, t, q) for p, k, t, q in zip(g["price"], g["K"], g["T"], g["q"], strict=True)]
    )
    time_value = g["price"] - np.maximum(g["q"] * (F0 - g["K"]), 0.0)
    maximum = np.where(g["q"] > 0, F0, g["K"])
    g["informative"] = (g["oracle"] > 0.0) & (g["oracle"] < 1e300) & (time_value / np.sqrt(F0 * g["K"]) >= 1e-300)
    vega = black76.greeks(F0, g["K"], g["T"], g["sigma"], g["q"] > 0)[2]
    with np.errstate(divide="ignore", invalid="ignore"):
        condition = np.finfo(float).eps * g["price"] / (g["sigma"] * vega)
        g["well_conditioned"] = g["informative"] & (condition <= 1e-12)
        g["deep_in_the_money"] = (
            g["informative"]
            & ~g["well_conditioned"]
            & (time_value < 0.01 * g["price"])
            & ((maximum - g["price"]) / maximum >= 1e-6)
        )
    g["compared"] = g["well_conditioned"] | g["deep_in_the_money"]
    return g


@pytest.fixture(scope="module")
def grid() -> dict[str, np.ndarray]:
    return _with_oracle(_grid())


def accuracy_against_oracle(g: dict[str, np.ndarray], subset: str) -> tuple[float, int, int]:
    """(max relative IV difference, points compared, points on the grid)."""
    sigma, status = black76.implied_volatility(g["price"], F0, g["K"], g["T"], g["q"] > 0)
    keep = g[subset]
    assert (status[keep] == OK).all()
    rel = np.abs(sigma[keep] / g["oracle"][keep] - 1.0)
    return float(rel.max()), int(keep.sum()), int(keep.size)


def test_against_the_lets_be_rational_package(grid: dict[str, np.ndarray]) -> None:
    worst, compared, total = accuracy_against_oracle(grid, "well_conditioned")
    assert worst <= 1e-12, worst
    assert compared >= 0.6 * total
    worst, compared, _ = accuracy_against_oracle(grid, "deep_in_the_money")
    assert worst <= 1e-12, worst
    assert compared >= 0.1 * total
    # Only a few informative points are in neither set.
    assert (grid["informative"] & ~grid["compared"]).sum() <= 0.01 * total
    # The comparison does reach the far regions: out of the money by 8 standard deviations and more, in the
    # money by more than 6 (beyond about 7 the time value is below the price's last digit: no information).
    z = grid["x"] / (grid["sigma"] * np.sqrt(grid["T"]))
    assert (grid["well_conditioned"] & (z * grid["q"] < -7.9)).sum() > 100
    assert (grid["deep_in_the_money"] & (z * grid["q"] > 6)).sum() > 100


def test_random_contracts_agree_within_what_the_price_determines() -> None:
    """Wider than the grid: |ln(F/K)| from 1e-8 to 500 and σ√T from 1e-5 to 50, at random. Every volatility
    the package gives (time value not subnormal) is matched to 1e-12, or, where the price itself determines
    σ less well, to a few times eps·price/(σ·vega)."""
    rng = np.random.default_rng(16)
    n = 3000
    x = rng.choice([-1.0, 1.0], n) * 10 ** rng.uniform(-8, 2.7, n)
    s = 10 ** rng.uniform(-5, 1.7, n)
    is_call = rng.random(n) < 0.5
    K = F0 * np.exp(-x)
    price = black76.price(F0, K, 1.0, s, is_call)
    sigma, status = black76.implied_volatility(price, F0, K, 1.0, is_call)
    vega = black76.greeks(F0, K, 1.0, s, is_call)[2]
    time_value = price - np.maximum(np.where(is_call, F0 - K, K - F0), 0.0)
    compared = 0
    for i in range(n):
        want = _oracle_iv(price[i], K[i], 1.0, 1.0 if is_call[i] else -1.0)
        if not (0.0 < want < 1e300) or time_value[i] / math.sqrt(F0 * K[i]) < 1e-300:
            continue
        assert status[i] == OK
        condition = np.finfo(float).eps * price[i] / (s[i] * vega[i])
        assert abs(sigma[i] / want - 1) <= 1e-12 + 4 * condition, (x[i], s[i], is_call[i], sigma[i], want)
        compared += 1
    assert compared > 0.5 * n


def test_excluded_points_get_a_status_not_a_wrong_number(grid: dict[str, np.ndarray]) -> None:
    sigma, status = black76.implied_volatility(grid["price"], F0, grid["K"], grid["T"], grid["q"] > 0)
    out = ~grid["informative"]  # where the package gives no volatility, or the time value is subnormal
    assert out.sum() > 0
    # Left out: no time value (below intrinsic), a zero price (no quote), or a price at the maximum; or a
    # subnormal time value, where an OK answer is allowed.
    bad = out & (status != OK)
    assert np.isnan(sigma[bad]).all()
    assert set(np.unique(status[bad])) <= {BELOW_INTRINSIC, NO_QUOTE, ABOVE_MAXIMUM}


def test_normalised_black_against_the_package() -> None:
    """b(x, s) in each of the four regions (asymptotic, small t, plain Φ, erfcx) and in the money."""
    from py_lets_be_rational import lets_be_rational as reference

    rng = np.random.default_rng(7)
    regions = {"asymptotic": (-60, -10, 1e-3, 5), "small t": (-12, 0, 1e-4, 0.21), "erfcx": (-10, 0, 0.21, 3)}
    regions["plain"] = (-3, 0.8, 0.5, 4)
    for name, (h_lo, h_hi, t_lo, t_hi) in regions.items():
        h = rng.uniform(h_lo, h_hi, 2000)
        t = rng.uniform(t_lo, t_hi, 2000)
        for x, s in zip(h * 2 * t, 2 * t, strict=True):
            for xx in (x, -x):  # -x is in the money: intrinsic plus the out-of-the-money value
                want = reference.normalised_black_call(xx, s)
                if want > 1e-300:
                    got = lbr.normalised_black_call(xx, s)
                    assert abs(got / want - 1) <= 1e-12, (name, xx, s, got, want)


def test_round_trip_price_iv_price() -> None:
    """σ -> price -> σ with fspec's own price; the error allowed grows with the condition number
    price/(σ·vega) (a deep in-the-money price is mostly intrinsic value, so its last digits are all the time
    value there is)."""
    g = _grid()
    is_call = g["q"] > 0
    df = np.exp(-0.05 * g["T"])
    price = black76.price(F0, g["K"], g["T"], g["sigma"], is_call, df)
    sigma, status = black76.implied_volatility(price, F0, g["K"], g["T"], is_call, df)
    vega = black76.greeks(F0, g["K"], g["T"], g["sigma"], is_call, df)[2]
    intrinsic = df * np.maximum(g["q"] * (F0 - g["K"]), 0.0)
    informative = (price - intrinsic) / df / np.sqrt(F0 * g["K"]) >= 1e-300
    ok = informative & (status == OK)
    assert ok.sum() >= 0.75 * ok.size
    rel = np.abs(sigma[ok] / g["sigma"][ok] - 1.0)
    condition = price[ok] / (g["sigma"][ok] * vega[ok])
    assert (rel <= 1e-12 + 64 * np.finfo(float).eps * condition).all()
    assert rel[condition < 10].max() <= 1e-13
    assert np.isnan(sigma[~ok & (status != OK)]).all()
    # And back to the price.
    again = black76.price(F0, g["K"], g["T"], sigma, is_call, df)
    assert np.allclose(again[ok], price[ok], rtol=1e-13, atol=0)


def _phi(x: float) -> float:
    """Φ from the standard library's erfc, independent of fspec's Cody erfc."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


@pytest.mark.parametrize("is_call", [True, False])
def test_greeks_closed_form_and_finite_differences(is_call: bool) -> None:
    rng = np.random.default_rng(11)
    n = 200
    F = rng.uniform(50, 150, n)
    K = F * np.exp(rng.uniform(-0.5, 0.5, n))
    T = np.exp(rng.uniform(np.log(1 / 365), np.log(3.0), n))
    sigma = rng.uniform(0.1, 0.8, n)
    df = np.exp(-0.03 * T)
    delta, gamma, vega = black76.greeks(F, K, T, sigma, is_call, df)
    for i in range(n):
        sd = sigma[i] * math.sqrt(T[i])
        d1 = math.log(F[i] / K[i]) / sd + 0.5 * sd
        density = math.exp(-0.5 * d1 * d1) / math.sqrt(2 * math.pi)
        want_delta = df[i] * (_phi(d1) if is_call else _phi(d1) - 1.0)
        assert delta[i] == pytest.approx(want_delta, rel=1e-12, abs=1e-15)
        assert gamma[i] == pytest.approx(df[i] * density / (F[i] * sd), rel=1e-12)
        assert vega[i] == pytest.approx(df[i] * F[i] * density * math.sqrt(T[i]), rel=1e-12)
    # Central differences of fspec's own price, steps scaled to the standard deviation of F at expiry. A
    # difference carries rounding noise of a few eps·price/step (it dominates where a Greek is ~0: deep in
    # or out of the money), and subnormal prices far out of the money. The truncation error, about (1e-4·d)²/6
    # relative for d standard deviations out of the money, reaches 2e-6 at the sample's |d| of 30 to 40 (and
    # the vega's, about (h·d²)²/6 for a relative step h in σ, wants h = 1e-6).
    eps = np.finfo(float).eps
    h_f = 1e-4 * F * sigma * np.sqrt(T)
    up = black76.price(F + h_f, K, T, sigma, is_call, df)
    mid = black76.price(F, K, T, sigma, is_call, df)
    down = black76.price(F - h_f, K, T, sigma, is_call, df)
    assert (np.abs(delta - (up - down) / (2 * h_f)) <= 1e-5 * np.abs(delta) + 8 * eps * mid / h_f + 1e-300).all()
    assert (np.abs(gamma - (up - 2 * mid + down) / h_f**2) <= 1e-4 * gamma + 8 * eps * mid / h_f**2 + 1e-300).all()
    h_s = 1e-6 * sigma
    up = black76.price(F, K, T, sigma + h_s, is_call, df)
    down = black76.price(F, K, T, sigma - h_s, is_call, df)
    assert (np.abs(vega - (up - down) / (2 * h_s)) <= 1e-5 * vega + 8 * eps * mid / h_s + 1e-300).all()
    # The noise allowance is not what passes these: most Greeks are far above it.
    assert (8 * eps * mid / h_s < 1e-6 * vega).mean() > 0.8


def test_greeks_put_call_relations_and_bad_inputs() -> None:
    F, K, T, sigma, df = 100.0, 90.0, 0.5, 0.3, 0.98
    dc, gc, vc = (float(v) for v in black76.greeks(F, K, T, sigma, True, df))
    dp, gp, vp = (float(v) for v in black76.greeks(F, K, T, sigma, False, df))
    assert dc - dp == pytest.approx(df, rel=1e-14)  # parity: C - P = df·(F - K)
    assert gc == gp and vc == vp
    for bad in ({"sigma": 0.0}, {"sigma": math.nan}, {"T": 0.0}, {"F": -1.0}, {"df": math.nan}):
        args = {"F": F, "K": K, "T": T, "sigma": sigma, "is_call": True, "df": df, **bad}
        assert all(np.isnan(v) for v in black76.greeks(**args))


def test_statuses() -> None:
    F, K, T, df = 100.0, 90.0, 0.25, 0.99
    intrinsic_call = df * (F - K)
    cases = [
        # (price, is_call, F, T, status)
        (np.nan, True, F, T, NO_QUOTE),
        (0.0, True, F, T, NO_QUOTE),
        (-1.0, True, F, T, NO_QUOTE),
        (intrinsic_call * 0.999, True, F, T, BELOW_INTRINSIC),
        (intrinsic_call, True, F, T, BELOW_INTRINSIC),  # at intrinsic: no time value
        (intrinsic_call + 0.5, True, F, T, OK),
        (df * F, True, F, T, ABOVE_MAXIMUM),
        (df * F * 1.01, True, F, T, ABOVE_MAXIMUM),
        (df * K * 0.999999, False, F, T, OK),  # a put is worth at most df·K
        (df * K, False, F, T, ABOVE_MAXIMUM),
        (1e-3, False, F, T, OK),  # out of the money: any positive price is above intrinsic
        (1.0, True, np.nan, T, BAD_INPUT),
        (1.0, True, F, 0.0, BAD_INPUT),
        (1.0, True, F, np.inf, BAD_INPUT),
    ]
    price, is_call, forwards, expiries, want = (np.array(c) for c in zip(*cases, strict=True))
    sigma, status = black76.implied_volatility(price, forwards, K, expiries, is_call, df)
    assert status.dtype == np.int8
    assert status.tolist() == want.tolist()
    assert np.isnan(sigma[status != OK]).all()
    assert (np.isfinite(sigma[status == OK]) & (sigma[status == OK] > 0)).all()
    assert set(black76.STATUS_NAMES) == {OK, BELOW_INTRINSIC, ABOVE_MAXIMUM, NO_QUOTE, CROSSED, BAD_INPUT}


def test_quote_statuses_and_mid() -> None:
    F, K, T, df = 100.0, 100.0, 0.1, 1.0
    bid = np.array([3.9, np.nan, 0.0, 3.9, 4.1, 4.0, -1.0])
    ask = np.array([4.1, 4.1, 4.1, np.nan, 3.9, 4.0, 4.1])
    want = [OK, NO_QUOTE, NO_QUOTE, NO_QUOTE, CROSSED, OK, NO_QUOTE]
    sigma, status = black76.implied_volatility_quotes(bid, ask, F, K, T, True, df)
    assert status.tolist() == want
    mid_sigma, mid_status = black76.implied_volatility(4.0, F, K, T, True, df)
    assert mid_status == OK and sigma[0] == mid_sigma and sigma[5] == mid_sigma  # the mid's volatility
    assert np.isnan(sigma[[1, 2, 3, 4, 6]]).all()


def test_broadcasting_keeps_the_shape() -> None:
    K = np.array([[90.0, 100.0], [110.0, 120.0]])
    price = black76.price(100.0, K, 0.5, 0.2, True)
    assert price.shape == (2, 2)
    sigma, status = black76.implied_volatility(price, 100.0, K, 0.5, True)
    assert sigma.shape == status.shape == (2, 2)
    np.testing.assert_allclose(sigma, 0.2, rtol=1e-13)


def test_zero_volatility_prices_intrinsic() -> None:
    price = black76.price(100.0, np.array([90.0, 110.0]), 1.0, 0.0, True, 0.9)
    np.testing.assert_allclose(price, [9.0, 0.0], rtol=1e-15, atol=0)
    assert np.isnan(black76.price(100.0, 90.0, 1.0, -0.1, True))


def test_normal_functions_against_the_standard_library() -> None:
    eps = np.finfo(float).eps
    for x in np.linspace(-26.0, 26.0, 2081):
        want = math.erfc(x)
        if want > 1e-300:
            assert normal.erfc(x) == pytest.approx(want, rel=2e-15), x
        # Where an exponential of x² enters, the rounding of x² alone gives both sides errors of about eps·x².
        tolerance = 4 * eps * max(1.0, x * x)
        if abs(x) < 20:  # erfcx = exp(x²)·erfc(x), where that product is representable
            assert normal.erfcx(x) == pytest.approx(math.exp(x * x) * want, rel=tolerance), x
        assert normal.norm_cdf(x) == pytest.approx(0.5 * math.erfc(-x / math.sqrt(2)), rel=tolerance, abs=1e-300)
    assert normal.erfcx(1e8) == pytest.approx(1 / (math.sqrt(math.pi) * 1e8), rel=1e-15)  # far tail, no exp
    assert normal.erfcx(-30.0) == math.inf
    for u in np.concatenate([np.logspace(-300, -1, 300), np.linspace(0.01, 0.99, 99)]):
        z = normal.inverse_norm_cdf(u)
        assert normal.norm_cdf(z) == pytest.approx(u, rel=1e-13), u
    assert normal.inverse_norm_cdf(0.0) == -math.inf and normal.inverse_norm_cdf(1.0) == math.inf
    assert math.isnan(normal.inverse_norm_cdf(-0.1))


def test_asymptotic_coefficients_are_jaeckels() -> None:
    """The closed form c[k, j] = (-1)^k (2k-1)!!·2·C(2k+1, 2j+1) gives the integers of his nested expression."""
    c = lbr._ASYMPTOTIC
    assert c.shape == (18, 18)
    assert c[0, 0] == 2 and c[1, :2].tolist() == [-6, -2] and c[2, :3].tolist() == [30, 60, 6]
    # The last bracket: 33!! · (-70 - 13090 e - ...) in his code, i.e. 31!!·33·(-70, -1.309e4, -6.49264e5).
    double_factorial_31 = math.prod(range(1, 32, 2))
    assert c[17, :3].tolist() == [-70.0 * 33 * double_factorial_31, -1.309e4 * 33 * double_factorial_31,
                                  -6.49264e5 * 33 * double_factorial_31]  # fmt: skip


def test_jaeckels_notice_is_kept() -> None:
    text = Path(lbr.__file__).read_text(encoding="utf-8")
    assert "Copyright © 2013-2014 Peter Jäckel." in text
    assert "provided that this notice is preserved." in text
    assert "WARRANTY DISCLAIMER" in text


# ---- the forward from put-call parity --------------------------------------------------------------------


def _chain(F: float, T: float, df: float, strikes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Model call and put prices at a smile, so parity holds exactly whatever the volatility."""
    sigma = 0.2 + 0.5 * np.log(strikes / F) ** 2
    return (black76.price(F, strikes, T, sigma, True, df), black76.price(F, strikes, T, sigma, False, df))


def test_forward_from_a_synthetic_chain() -> None:
    F, T = 102.3, 0.5
    df = math.exp(-0.04 * T)
    strikes = np.arange(80.0, 125.0, 2.5)
    call, put = _chain(F, T, df, strikes)
    got, k_star = forward.forward_from_parity(strikes, call, put, df)
    assert k_star == 102.5  # the strike nearest the forward has the smallest |C - P|
    assert got == pytest.approx(F, rel=1e-13)
    # Unordered rows give the same answer.
    order = np.random.default_rng(1).permutation(strikes.size)
    assert forward.forward_from_parity(strikes[order], call[order], put[order], df) == (got, k_star)
    # The nearest strike without a put: the next one is used, and parity still gives F.
    put_missing = put.copy()
    put_missing[strikes == 102.5] = np.nan
    got2, k2 = forward.forward_from_parity(strikes, call, put_missing, df)
    assert k2 == 100.0 and got2 == pytest.approx(F, rel=1e-12)
    # A zero price is no quote either.
    call_zero = call.copy()
    call_zero[strikes == 102.5] = 0.0
    assert forward.forward_from_parity(strikes, call_zero, put, df)[1] == 100.0


def test_forward_edge_cases() -> None:
    strikes = np.array([90.0, 100.0, 110.0])
    nan = np.full(3, np.nan)
    # No strike with both sides: NaN.
    f, k = forward.forward_from_parity(strikes, np.array([12.0, np.nan, np.nan]), np.array([np.nan, 3.0, 1.0]))
    assert math.isnan(f) and math.isnan(k)
    assert all(math.isnan(v) for v in forward.forward_from_parity(strikes, nan, nan))
    assert all(math.isnan(v) for v in forward.forward_from_parity([], [], []))
    # A bad discount factor: NaN.
    assert math.isnan(forward.forward_from_parity(strikes, [11.0, 4.0, 1.0], [1.0, 4.0, 11.0], 0.0)[0])
    # Ties in |C - P| go to the lowest strike: |C-P| = 2 at 90 and at 110.
    f, k = forward.forward_from_parity(strikes, [11.0, 5.0, 1.0], [9.0, 1.0, 3.0], 1.0)
    assert k == 90.0 and f == 92.0
    f_rev, k_rev = forward.forward_from_parity(strikes[::-1], [1.0, 5.0, 11.0], [3.0, 1.0, 9.0], 1.0)
    assert (f_rev, k_rev) == (f, k)
    # Discounting: F = K* + (C - P)/df.
    f, k = forward.forward_from_parity([100.0], [5.0], [4.0], 0.5)
    assert (f, k) == (102.0, 100.0)


def test_forward_from_quotes_skips_crossed_and_one_sided() -> None:
    strikes = np.array([95.0, 100.0, 105.0])
    call_bid = np.array([6.0, 3.0, 1.0])
    call_ask = np.array([6.2, 2.9, 1.2])  # crossed at 100
    put_bid = np.array([1.0, 2.0, 0.0])  # no bid at 105
    put_ask = np.array([1.2, 2.2, 5.0])
    f, k = forward.forward_from_quotes(strikes, call_bid, call_ask, put_bid, put_ask, 1.0)
    assert k == 95.0 and f == pytest.approx(95.0 + 6.1 - 1.1)


def test_forwards_by_expiry() -> None:
    strikes = np.arange(80.0, 125.0, 5.0)
    rows = []
    for label, F, T in (("2026-03-20", 101.0, 0.25), ("2026-01-16", 99.5, 0.05), ("2026-06-19", 103.0, 0.5)):
        df = math.exp(-0.04 * T)
        call, put = _chain(F, T, df, strikes)
        rows += [(label, k, c, p, df) for k, c, p in zip(strikes, call, put, strict=True)]
    rows.append(("2027-01-15", 100.0, np.nan, 2.0, 0.95))  # an expiry with no two-sided strike
    order = np.random.default_rng(3).permutation(len(rows))
    expiry, k, c, p, df = (np.array(col)[order] for col in zip(*rows, strict=True))
    labels, forwards, k_star = forward.forwards_by_expiry(expiry, k.astype(float), c, p, df.astype(float))
    assert labels.tolist() == ["2026-01-16", "2026-03-20", "2026-06-19", "2027-01-15"]
    np.testing.assert_allclose(forwards[:3], [99.5, 101.0, 103.0], rtol=1e-13)
    assert k_star[:3].tolist() == [100.0, 100.0, 105.0]
    assert math.isnan(forwards[3]) and math.isnan(k_star[3])


def test_forward_refuses_rows_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        forward.forward_from_parity([90.0, 100.0], [1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="differ in length"):
        forward.forwards_by_expiry(["a", "a"], [90.0, 100.0], [1.0, 2.0], [1.0], 1.0)
    labels, forwards, k_star = forward.forwards_by_expiry([], [], [], [], 1.0)
    assert labels.size == forwards.size == k_star.size == 0


if __name__ == "__main__":  # the accuracy numbers of docs/options.md
    g = _with_oracle(_grid())
    for subset in ("well_conditioned", "deep_in_the_money"):
        worst, compared, total = accuracy_against_oracle(g, subset)
        print(
            f"{subset}: max relative IV difference against lets-be-rational {worst:.3e}, {compared} of {total} points"
        )
