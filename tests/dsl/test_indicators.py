"""Every indicator against a plain loop over Python floats written here."""

from __future__ import annotations

import math
import random

import polars as pl
import pytest

from alchemiser.dsl.errors import StrategyDataError
from alchemiser.dsl.indicators import (
    MAX_DRAWDOWN_SPANS_N_RETURNS,
    RSI_WHEN_NO_LOSS,
    STDEV_DDOF,
    PriceHistory,
    closes_needed,
    value_on,
)
from tests.dsl.conftest import day, frame


def walk(n: int, seed: int = 7) -> list[float]:
    rng = random.Random(seed)
    closes = [100.0]
    for _ in range(n - 1):
        closes.append(closes[-1] * (1 + rng.uniform(-0.04, 0.041)))
    return closes


# ---------------------------------------------------------- reference loops


def mean(xs: list[float]) -> float:
    total = 0.0
    for x in xs:
        total += x
    return total / len(xs)


def sample_stdev(xs: list[float]) -> float:
    m = mean(xs)
    total = 0.0
    for x in xs:
        total += (x - m) * (x - m)
    return math.sqrt(total / (len(xs) - 1))


def returns(xs: list[float]) -> list[float]:
    return [xs[k] / xs[k - 1] - 1 for k in range(1, len(xs))]


def ref_ema(xs: list[float], n: int) -> float:
    alpha = 2 / (n + 1)
    value = mean(xs[:n])
    for x in xs[n:]:
        value = alpha * x + (1 - alpha) * value
    return value


def ref_ema_all(xs: list[float], n: int) -> list[float]:
    return [ref_ema(xs[: k + 1], n) for k in range(n - 1, len(xs))]


def ref_rsi(xs: list[float], n: int) -> float:
    gains, losses = [], []
    for k in range(1, len(xs)):
        change = xs[k] - xs[k - 1]
        gains.append(change if change > 0 else 0.0)
        losses.append(-change if change < 0 else 0.0)
    gain, loss = mean(gains[:n]), mean(losses[:n])
    for g, lo in zip(gains[n:], losses[n:], strict=True):
        gain = gain + (g - gain) / n
        loss = loss + (lo - loss) / n
    if loss == 0:
        return 100.0
    return 100 - 100 / (1 + gain / loss)


def ref_max_drawdown(xs: list[float], n: int) -> float:
    window = xs[-n:]  # the last N closes
    worst = 0.0
    for t in range(len(window)):
        for s in range(t):
            worst = max(worst, (window[s] - window[t]) / window[s])
    return worst * 100


def ref_ppo(xs: list[float], short: int, long: int) -> float:
    return (ref_ema(xs, short) - ref_ema(xs, long)) / ref_ema(xs, long) * 100


def ref_ppo_signal(xs: list[float], short: int, long: int, smooth: int) -> float:
    ppos = [ref_ppo(xs[: k + 1], short, long) for k in range(long - 1, len(xs))]
    return ref_ema(ppos, smooth)


REFERENCES = {
    "current-price": lambda xs, p: xs[-1],
    "moving-average-price": lambda xs, p: mean(xs[-p["window"] :]),
    "exponential-moving-average-price": lambda xs, p: ref_ema(xs, p["window"]),
    "moving-average-return": lambda xs, p: mean(returns(xs)[-p["window"] :]) * 100,
    "cumulative-return": lambda xs, p: (xs[-1] / xs[-1 - p["window"]] - 1) * 100,
    "stdev-return": lambda xs, p: sample_stdev(returns(xs)[-p["window"] :]) * 100,
    "stdev-price": lambda xs, p: sample_stdev(xs[-p["window"] :]),
    "max-drawdown": lambda xs, p: ref_max_drawdown(xs, p["window"]),
    "rsi": lambda xs, p: ref_rsi(xs, p["window"]),
    "percentage-price-oscillator": lambda xs, p: ref_ppo(xs, p["short-window"], p["long-window"]),
    "percentage-price-oscillator-signal": lambda xs, p: ref_ppo_signal(
        xs, p["short-window"], p["long-window"], p["smooth-window"]
    ),
}

# (indicator, params, closes needed) as the specification defines them.
CASES = [
    ("current-price", {}, 1),
    ("moving-average-price", {"window": 5}, 5),
    ("moving-average-price", {"window": 1}, 1),
    ("exponential-moving-average-price", {"window": 8}, 8),
    ("exponential-moving-average-price", {"window": 1}, 1),
    ("moving-average-return", {"window": 6}, 7),
    ("moving-average-return", {"window": 1}, 2),
    ("cumulative-return", {"window": 10}, 11),
    ("cumulative-return", {"window": 1}, 2),
    ("stdev-return", {"window": 9}, 10),
    ("stdev-price", {"window": 4}, 4),
    ("max-drawdown", {"window": 7}, 7),
    ("max-drawdown", {"window": 1}, 1),
    ("rsi", {"window": 10}, 11),
    ("rsi", {"window": 1}, 2),
    ("percentage-price-oscillator", {"short-window": 3, "long-window": 7}, 7),
    (
        "percentage-price-oscillator-signal",
        {"short-window": 3, "long-window": 7, "smooth-window": 4},
        10,
    ),
]


def as_params(p: dict[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(p.items())


@pytest.fixture(scope="module")
def closes() -> list[float]:
    return walk(60)


@pytest.fixture(scope="module")
def history(closes: list[float]) -> PriceHistory:
    return PriceHistory(frame({"AAA": closes}))


@pytest.mark.parametrize(("name", "params", "need"), CASES)
def test_indicator_matches_plain_loop_on_every_day(
    name: str, params: dict[str, int], need: int, closes: list[float], history: PriceHistory
) -> None:
    assert closes_needed(name, as_params(params)) == need
    full = {"short-window": 12, "long-window": 26, "smooth-window": 9, **params}
    for k in range(need - 1, len(closes)):
        expected = REFERENCES[name](closes[: k + 1], full)
        got = history.value(name, "AAA", as_params(params), k)
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-9), (name, k)
        if name != "max-drawdown":  # computed per day, never as a whole series
            whole = history.series(name, "AAA", as_params(params))[k]
            assert whole == pytest.approx(expected, rel=1e-9, abs=1e-9), (name, k)
        # The NAV path (plain Python on a list) agrees with the polars series.
        assert value_on(name, as_params(params), closes[: k + 1]) == pytest.approx(
            expected, rel=1e-9, abs=1e-9
        )


@pytest.mark.parametrize(("name", "params", "need"), [c for c in CASES if c[2] > 1])
def test_too_little_history_is_a_data_error(
    name: str, params: dict[str, int], need: int, history: PriceHistory
) -> None:
    with pytest.raises(StrategyDataError) as info:
        history.value(name, "AAA", as_params(params), need - 2)
    err = info.value
    assert (err.ticker, err.indicator, err.as_of) == ("AAA", name, day(need - 2))
    assert err.window == params.get("window", params.get("long-window"))
    assert f"needs {need} daily closes, only {need - 1}" in err.message
    assert math.isnan(value_on(name, as_params(params), [1.0] * (need - 1)))


def test_window_longer_than_all_history(history: PriceHistory) -> None:
    with pytest.raises(StrategyDataError, match="needs 201 daily closes, only 60"):
        history.value("cumulative-return", "AAA", (("window", 200),), 59)


def test_window_one_values_are_what_a_trader_expects() -> None:
    h = PriceHistory(frame({"A": [10.0, 11.0, 9.9]}))
    w1 = (("window", 1),)
    assert h.value("moving-average-price", "A", w1, 2) == 9.9
    assert h.value("exponential-moving-average-price", "A", w1, 2) == 9.9
    assert h.value("cumulative-return", "A", w1, 1) == pytest.approx(10.0)
    assert h.value("moving-average-return", "A", w1, 2) == pytest.approx(-10.0)
    assert h.value("max-drawdown", "A", w1, 1) == 0.0
    assert h.value("max-drawdown", "A", w1, 2) == 0.0  # one close: no fall
    assert h.value("max-drawdown", "A", (("window", 2),), 2) == pytest.approx(10.0)
    assert h.value("rsi", "A", w1, 1) == RSI_WHEN_NO_LOSS
    assert h.value("rsi", "A", w1, 2) == 0.0


def test_rsi_is_100_when_prices_only_rise() -> None:
    h = PriceHistory(frame({"UP": [float(x) for x in range(1, 30)]}))
    assert h.value("rsi", "UP", (("window", 14),), 28) == 100.0


def test_recursive_indicators_use_all_history() -> None:
    closes = walk(300, seed=3)
    h = PriceHistory(frame({"A": closes}))
    rsi = h.value("rsi", "A", (("window", 10),), 299)
    ema = h.value("exponential-moving-average-price", "A", (("window", 20),), 299)
    assert rsi == pytest.approx(ref_rsi(closes, 10), abs=1e-9)
    assert ema == pytest.approx(ref_ema(closes, 20), rel=1e-12)
    # A short warm-up would give a noticeably different answer.
    assert abs(rsi - ref_rsi(closes[-11:], 10)) > 1e-3
    assert abs(ema - ref_ema(closes[-20:], 20)) > 1e-6


def test_rsi_10_from_all_history_matches_last_1000_bars() -> None:
    closes = walk(1600, seed=11)
    full = PriceHistory(frame({"A": closes})).value("rsi", "A", (("window", 10),), 1599)
    last = PriceHistory(frame({"A": closes[-1000:]})).value("rsi", "A", (("window", 10),), 999)
    assert abs(full - last) <= 1e-6


def test_pinned_constants() -> None:
    # Sample standard deviation; max-drawdown over the last N closes.
    assert STDEV_DDOF == 1
    assert MAX_DRAWDOWN_SPANS_N_RETURNS is False
    h = PriceHistory(frame({"A": [1.0, 2.0, 3.0]}))
    assert h.value("stdev-price", "A", (("window", 3),), 2) == pytest.approx(1.0)
    h = PriceHistory(frame({"A": [10.0, 5.0, 6.0]}))
    assert h.value("max-drawdown", "A", (("window", 2),), 2) == 0.0  # closes 5, 6
    assert h.value("max-drawdown", "A", (("window", 3),), 2) == pytest.approx(50.0)


def test_unknown_ticker_and_missing_day_are_data_errors() -> None:
    h = PriceHistory(frame({"A": [1.0, 2.0, 3.0], "B": [1.0]}))
    with pytest.raises(StrategyDataError, match="no price data for this ticker") as info:
        h.value("current-price", "ZZZ", (), 2)
    assert info.value.ticker == "ZZZ"
    with pytest.raises(StrategyDataError, match="no price on this date"):
        h.value("current-price", "B", (), 2)


def test_series_are_computed_once_and_reused(history: PriceHistory) -> None:
    params = (("window", 5),)
    first = history.series("moving-average-price", "AAA", params)
    history.value("moving-average-price", "AAA", params, 30)
    assert history.series("moving-average-price", "AAA", params) is first


def test_null_closes_are_ignored_and_duplicate_rows_keep_the_last() -> None:
    f = frame({"A": [1.0, 2.0, 3.0]})
    extra = pl.DataFrame(
        {"symbol": ["A", "A"], "date": [day(3), day(2)], "close": [None, 5.0]},
        schema={"symbol": pl.String, "date": pl.Date, "close": pl.Float64},
    )
    h = PriceHistory(pl.concat([f, extra]))
    assert [h.value("current-price", "A", (), i) for i in range(3)] == [1.0, 2.0, 5.0]


def test_ticker_with_gap_uses_its_own_rows() -> None:
    f = frame({"A": [1.0, 2.0, 3.0, 4.0], "B": [10.0, 20.0, 30.0, 40.0]})
    f = f.filter(~((f["symbol"] == "B") & (f["date"] == day(1))))
    h = PriceHistory(f)
    # B's previous row before day 2 is day 0: a 2-close average of 10 and 30.
    assert h.value("moving-average-price", "B", (("window", 2),), 2) == 20.0
    with pytest.raises(StrategyDataError):
        h.value("current-price", "B", (), 1)


# max-drawdown is computed per day: `prefetch` skips it, so a batch of it would
# take the same path as one ticker and compare a thing with itself.
@pytest.mark.parametrize(("name", "params", "need"), [c for c in CASES if c[0] != "max-drawdown"])
def test_batch_over_many_tickers_equals_one_ticker_at_a_time(
    name: str, params: dict[str, int], need: int
) -> None:
    series = {"A": walk(40, seed=1), "B": walk(25, seed=2), "C": walk(3, seed=3)}
    f = frame(series)
    batch, single = PriceHistory(f), PriceHistory(f)
    p = as_params(params)
    batch.prefetch([(name, t, p) for t in series] + [(name, "NODATA", p)])
    for ticker, closes in series.items():
        one = single.series(name, ticker, p)
        many = batch.series(name, ticker, p)
        assert len(many) == len(closes)
        for a, b in zip(one, many, strict=True):
            assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-12)


def test_aligned_series_is_indexed_by_calendar_day() -> None:
    f = frame({"A": [1.0, 2.0, 3.0, 4.0], "B": [1.0] * 4})
    h = PriceHistory(f.filter((pl.col("symbol") == "B") | (pl.col("date") != day(1))))
    aligned = h.aligned("current-price", "A", ())
    assert aligned == [1.0, None, 3.0, 4.0]
    assert h.aligned("current-price", "NODATA", ()) is None
    assert h.aligned("max-drawdown", "A", (("window", 1),)) is None  # computed per day


def test_row_maps_calendar_days_to_the_tickers_own_rows() -> None:
    f = frame({"A": [1.0, 2.0, 3.0, 4.0], "B": [1.0] * 4, "C": [1.0] * 4})
    gaps = (pl.col("symbol") == "A") & (pl.col("date") == day(1))
    late = (pl.col("symbol") == "C") & (pl.col("date") < day(2))
    h = PriceHistory(f.filter(~gaps & ~late))
    assert [h.row("A", i) for i in range(-1, 5)] == [-1, 0, -1, 1, 2, -1]
    assert [h.row("B", i) for i in range(-1, 5)] == [-1, 0, 1, 2, 3, -1]
    assert [h.row("C", i) for i in range(-1, 5)] == [-1, -1, -1, 0, 1, -1]
    assert h.row("NODATA", 0) == -1
    assert h.daily_return("B", 1) == 0.0
    with pytest.raises(StrategyDataError, match="no price on the previous day"):
        h.daily_return("A", 2)


@pytest.mark.parametrize("window", [5, 8, 13, 26, 50, 100])
@pytest.mark.parametrize(
    "name", ["exponential-moving-average-price", "rsi", "moving-average-price", "stdev-return"]
)
def test_a_series_has_the_same_bits_whichever_tickers_it_is_computed_with(
    name: str, window: int
) -> None:
    # A seed's mean is rounded otherwise by polars outside a group (an EMA's
    # often is): a ticker computed alone must be computed as in a batch.
    series = {t: walk(300, seed=s) for s, t in enumerate(["A", "B", "C", "D"])}
    f = frame(series)
    batch, single = PriceHistory(f), PriceHistory(f)
    p = (("window", window),)
    batch.prefetch([(name, t, p) for t in series])
    for ticker in series:
        one, many = single.column(name, ticker, p), batch.column(name, ticker, p)
        assert one.tobytes() == many.tobytes(), ticker


def test_rows_in_any_order_give_the_history_of_the_sorted_rows() -> None:
    series = {"B": walk(30, seed=1), "A": walk(20, seed=2), "C": walk(25, seed=3)}
    f = frame(series)
    repeated = pl.DataFrame(
        {"symbol": ["A"], "date": [day(3)], "close": [7.0]},
        schema={"symbol": pl.String, "date": pl.Date, "close": pl.Float64},
    )
    # A repeated (symbol, date) keeps the row that comes last in the frame.
    ordered = pl.concat([f, repeated], how="diagonal").sort("symbol", "date", maintain_order=True)
    shuffled = pl.concat([f.sample(fraction=1.0, shuffle=True, seed=5), repeated], how="diagonal")
    a, b = PriceHistory(ordered), PriceHistory(shuffled)
    assert a.calendar == b.calendar == [day(i) for i in range(30)]
    for ticker in series:
        assert [a.row(ticker, i) for i in range(30)] == [b.row(ticker, i) for i in range(30)]
        for name, params in [("current-price", ()), ("rsi", (("window", 5),))]:
            one, other = a.column(name, ticker, params), b.column(name, ticker, params)
            assert one.tobytes() == other.tobytes()
    assert a.value("current-price", "A", (), 3) == b.value("current-price", "A", (), 3) == 7.0


def test_a_frame_dated_by_datetimes_gives_the_same_rows_and_series() -> None:
    f = frame({"A": walk(20, seed=1), "B": walk(12, seed=2)})
    f = f.filter(~((pl.col("symbol") == "A") & (pl.col("date") == day(4))))
    by_date = PriceHistory(f)
    by_datetime = PriceHistory(f.with_columns(pl.col("date").cast(pl.Datetime)))
    assert [d.date() for d in by_datetime.calendar] == by_date.calendar
    for ticker in ("A", "B"):
        assert [by_date.row(ticker, i) for i in range(20)] == [
            by_datetime.row(ticker, i) for i in range(20)
        ]
        params = (("window", 3),)
        one = by_date.column("moving-average-price", ticker, params)
        other = by_datetime.column("moving-average-price", ticker, params)
        assert one.tobytes() == other.tobytes()
