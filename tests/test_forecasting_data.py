"""The forecasting data protocol without training: borders and window counts of the standard
protocol, the scaler fitted on training rows only, the repeat baseline against the published
rows (real data) and its synthetic twin, causal moving averages, and every bad input."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from nlp_lstm.data.errors import DataError
from nlp_lstm.forecasting.series import (
    StandardScaler,
    feature_columns,
    moving_average,
    num_windows,
    read_csv,
    repeat_forecast,
    scores,
    split_rows,
    windows,
)

COLUMNS = ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
HORIZONS = (96, 192, 336, 720)
#: DLinear (Zeng et al. 2023), Table 2, "Repeat" (L=336, scored with drop_last at batch 32).
PUBLISHED_REPEAT = {
    "ETTh1": [(1.295, 0.713), (1.325, 0.733), (1.323, 0.744), (1.339, 0.756)],
    "ETTm1": [(1.214, 0.665), (1.261, 0.690), (1.283, 0.707), (1.319, 0.729)],
}


def write_series(path: Path, rows: int, step_minutes: int = 60, seed: int = 0,
                 columns: list[str] = COLUMNS) -> Path:
    """An ETT-shaped CSV (or .csv.gz): random walks around different levels."""
    rng = np.random.default_rng(seed)
    values = np.cumsum(rng.normal(0, 1, (rows, len(columns))), 0) + np.arange(len(columns)) * 5
    start = np.datetime64("2016-07-01T00:00")
    lines = ["date," + ",".join(columns)]
    for i, row in enumerate(values):
        stamp = str(start + np.timedelta64(i * step_minutes, "m")).replace("T", " ")
        lines.append(f"{stamp}:00," + ",".join(f"{v:.3f}" for v in row))
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


@pytest.fixture(scope="module")
def etth1_twin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic twin of ETTh1: the same name (so the same borders) and length."""
    return write_series(tmp_path_factory.mktemp("ett") / "ETTh1.csv.gz", 17420)


# ------------------------------------------------------------ borders and windows
def test_the_standard_borders_and_window_counts(etth1_twin: Path) -> None:
    series = read_csv(etth1_twin)
    assert series.columns == tuple(COLUMNS) and series.values.shape == (17420, 7)
    assert split_rows(series, "train", 336) == (0, 8640)
    assert split_rows(series, "val", 336) == (8640 - 336, 11520)
    assert split_rows(series, "test", 336) == (11520 - 336, 14400)
    start, end = split_rows(series, "test", 336)
    counts = [num_windows(end - start, 336, h) for h in HORIZONS]
    assert counts == [2785, 2689, 2545, 2161]  # every test window, no drop_last
    inputs, targets = windows(series.values[start:end], 336, 96)
    assert inputs.shape == (2785, 336, 7) and targets.shape == (2785, 96, 7)
    # The first target row is the test border; the last is the last row before 14400.
    assert np.array_equal(targets[0, 0], series.values[11520])
    assert np.array_equal(targets[-1, -1], series.values[14399])
    assert np.array_equal(inputs[0, -1], series.values[11519])


def test_the_15_minute_borders_are_four_times_the_hourly(tmp_path: Path) -> None:
    series = read_csv(write_series(tmp_path / "ETTm1.csv", 69680, step_minutes=15))
    start, end = split_rows(series, "test", 336)
    assert (start, end) == (4 * 11520 - 336, 4 * 14400)
    assert [num_windows(end - start, 336, h) for h in HORIZONS] == [11425, 11329, 11185,
                                                                    10801]


def test_other_files_split_70_10_20(tmp_path: Path) -> None:
    series = read_csv(write_series(tmp_path / "mine.csv", 1000, columns=["a", "OT"]))
    assert split_rows(series, "train", 24) == (0, 700)
    assert split_rows(series, "val", 24) == (700 - 24, 800)
    assert split_rows(series, "test", 24) == (800 - 24, 1000)
    assert feature_columns(series, "MS", "OT") == (["a", "OT"], ["OT"])
    assert feature_columns(series, "S", "OT") == (["OT"], ["OT"])


# ----------------------------------------------------------------- the scaler
def test_the_scaler_is_fitted_on_the_training_rows_only(etth1_twin: Path) -> None:
    series = read_csv(etth1_twin)
    start, end = split_rows(series, "train", 336)
    scaler = StandardScaler.fit(series.values[start:end])
    changed = series.values.copy()
    changed[end:] *= 100.0  # every row after training
    again = StandardScaler.fit(changed[slice(*split_rows(series, "train", 336))])
    assert np.array_equal(scaler.mean, again.mean) and np.array_equal(scaler.std, again.std)
    assert np.allclose(scaler.std, series.values[:8640].std(0))  # ddof 0
    z = scaler.transform(series.values)
    assert np.allclose(scaler.inverse(z), series.values)
    restored = StandardScaler.from_json(scaler.to_json())
    assert np.array_equal(restored.mean, scaler.mean) and np.array_equal(restored.std, scaler.std)


# ------------------------------------------------------------ the repeat baseline
def naive_repeat(z: np.ndarray, start: int, end: int, length: int, horizon: int,
                 batch: int | None) -> tuple[float, float]:
    """The baseline written out window by window, as published code computes it."""
    count = num_windows(end - start, length, horizon)
    if batch is not None:
        count = count // batch * batch
    squared, absolute = [], []
    for i in range(count):
        last = z[start + i + length - 1]
        for row in z[start + i + length : start + i + length + horizon]:
            squared.append((row - last) ** 2)
            absolute.append(np.abs(row - last))
    return float(np.mean(squared)), float(np.mean(absolute))


@pytest.mark.parametrize("batch", [None, 32])
def test_the_repeat_baseline_on_a_synthetic_twin(etth1_twin: Path, batch: int | None) -> None:
    series = read_csv(etth1_twin)
    scaler = StandardScaler.fit(series.values[slice(*split_rows(series, "train", 336))])
    z = scaler.transform(series.values)
    start, end = split_rows(series, "test", 336)
    inputs, targets = windows(z[start:end], 336, 96)
    got = scores(repeat_forecast(inputs, 96), targets, compat_drop_last=batch)
    mse, mae = naive_repeat(z, start, end, 336, 96, batch)
    assert got["mse"] == pytest.approx(mse, rel=1e-9) and got["mae"] == pytest.approx(mae)
    assert got["windows"] == (2785 if batch is None else 2784)


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["ETTh1", "ETTm1"])
def test_the_repeat_baseline_reproduces_the_published_rows(name: str) -> None:
    root = os.environ.get("NLP_LSTM_DATA")
    if not root or not (Path(root) / "ett" / f"{name}.csv.gz").is_file():
        pytest.skip("set NLP_LSTM_DATA to the data root (with ett/)")
    series = read_csv(Path(root) / "ett" / f"{name}.csv.gz")
    scaler = StandardScaler.fit(series.values[slice(*split_rows(series, "train", 336))])
    z = scaler.transform(series.values)
    start, end = split_rows(series, "test", 336)
    for horizon, (mse, mae) in zip(HORIZONS, PUBLISHED_REPEAT[name], strict=True):
        inputs, targets = windows(z[start:end], 336, horizon)
        got = scores(repeat_forecast(inputs, horizon), targets, compat_drop_last=32)
        assert got["mse"] == pytest.approx(mse, abs=1e-3), (name, horizon, got)
        assert got["mae"] == pytest.approx(mae, abs=1e-3), (name, horizon, got)


# -------------------------------------------------------------------- causality
def test_moving_averages_are_causal() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=(2, 50, 3))
    averaged = moving_average(values, 7)
    for t in (0, 3, 6, 30, 49):
        start = max(0, t - 6)
        assert np.allclose(averaged[:, t], values[:, start : t + 1].mean(1))
    for t in (1, 20, 40):  # rows >= t change: nothing before t does
        changed = values.copy()
        changed[:, t:] = rng.normal(size=changed[:, t:].shape) * 100
        assert np.array_equal(moving_average(changed, 7)[:, :t], averaged[:, :t])


def test_windows_end_at_their_origin(etth1_twin: Path) -> None:
    """The inputs of the window whose first target is row t hold rows t-L .. t-1 only."""
    values = read_csv(etth1_twin).values[:1000]
    inputs, _ = windows(values, 48, 24)
    changed = values.copy()
    changed[500:] = 0.0
    again, _ = windows(changed, 48, 24)
    origin = 500 - 48  # the window whose inputs end at row 499
    assert np.array_equal(inputs[: origin + 1], again[: origin + 1])
    assert not np.array_equal(inputs[origin + 1], again[origin + 1])


# ----------------------------------------------------------------- bad inputs
def write(tmp_path: Path, text: str, name: str = "bad.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "message"), [
    ("time,a\n2016-07-01 00:00:00,1\n2016-07-01 01:00:00,2\n", "no 'date' column"),
    ("date,a\n2016-07-01 00:00:00,1\n2016-07-01 01:00:00,\n", "line 3, column 'a': empty"),
    ("date,a\n2016-07-01 00:00:00,1\n2016-07-01 01:00:00,nan\n", "line 3, column 'a': 'nan'"),
    ("date,a\n2016-07-01 00:00:00,1\n2016-07-01 01:00:00,x\n", "'x', not a number"),
    ("date,a\n2016-07-01 00:00:00,1\n2016-07-01 00:00:00,2\n", "line 3: timestamp"),
    ("date,a\n2016-07-01 00:00:00,1\n2016-07-01 01:00:00,2\n2016-07-01 03:00:00,2\n",
     "irregular timestamps"),
    ("date,a\n2016-07-01 00:00:00,1\n", "has 1 rows; at least 2"),
    ("date,a\nyesterday,1\n2016-07-01 00:00:00,2\n", "'yesterday' is not a date"),
    ("date,a\n2016-07-01 00:00:00,1,2\n2016-07-01 01:00:00,2\n", "line 2: 3 fields"),
    ("date\n2016-07-01 00:00:00\n2016-07-01 01:00:00\n", "no numeric columns"),
])
def test_bad_files_are_refused_naming_the_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_csv(write(tmp_path, text))


def test_other_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="series file not found"):
        read_csv(tmp_path / "missing.csv")
    series = read_csv(write_series(tmp_path / "mine.csv", 100, columns=["a", "OT"]))
    with pytest.raises(DataError, match=r"no column\(s\) \['b'\]"):
        series.select(["a", "b"])
    with pytest.raises(DataError, match="no target column 'temp'"):
        feature_columns(series, "M", "temp")
    with pytest.raises(ValueError, match="features must be one of"):
        feature_columns(series, "X", "OT")
    with pytest.raises(DataError, match="at least 120 rows are needed"):
        windows(series.values[:50], 96, 24)
    with pytest.raises(DataError, match="the ETT borders need 14400"):
        split_rows(read_csv(write_series(tmp_path / "ETTh1.csv", 500)), "test", 96)
