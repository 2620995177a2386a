"""The forecasting benchmark (``benchmarks/forecast.py``) and the in-repo DLinear, on the
synthetic series: no data, seconds."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks import forecast as bench
from nlp_lstm.forecasting.data import ForecastDataModule, SyntheticSeries
from nlp_lstm.forecasting.dlinear import DLinear, MovingAverage

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def dm(tmp_path_factory: pytest.TempPathFactory) -> ForecastDataModule:
    data = ForecastDataModule(source=SyntheticSeries(rows=1200, channels=3), input_length=48,
                              horizon=12, cache_dir=str(tmp_path_factory.mktemp("cache")))
    data.setup()
    return data


# ---------------------------------------------------------------------- DLinear
@pytest.mark.parametrize("individual", [False, True])
def test_dlinear_shapes(individual: bool) -> None:
    model = DLinear(input_length=48, horizon=12, channels=3, individual=individual)
    assert model(torch.randn(5, 48, 3)).shape == (5, 12, 3)
    with pytest.raises(ValueError, match="input rows"):
        model(torch.randn(5, 40, 3))


def test_dlinear_reads_its_own_window_only() -> None:
    """Each forecast depends on its own window and nothing else in the batch."""
    torch.manual_seed(0)
    model = DLinear(48, 12, 3)
    x = torch.randn(4, 48, 3, requires_grad=True)
    model(x)[1].sum().backward()
    assert x.grad[[0, 2, 3]].abs().sum() == 0
    assert x.grad[1].abs().sum() > 0


def test_moving_average_keeps_length_and_constants() -> None:
    average = MovingAverage(25)
    x = torch.full((2, 48, 3), 3.0)
    assert torch.allclose(average(x), x)
    ramp = torch.arange(48.0).view(1, 48, 1)
    assert average(ramp).shape == (1, 48, 1)
    assert torch.isclose(average(ramp)[0, 24, 0], ramp[0, 24, 0])  # centred in the middle


# -------------------------------------------------------------- runners, evaluator
def test_repeat_runner_and_evaluator(dm: ForecastDataModule) -> None:
    result = bench.run_repeat(dm, "synthetic")
    test = dm.split_windows("test")
    assert result["windows"] == len(test) == bench.protocol_windows(dm)
    error = np.repeat(test.inputs[:, -1:], 12, axis=1) - test.outputs
    assert result["mse"] == pytest.approx(float(np.mean(error.astype(np.float64) ** 2)))
    with pytest.raises(ValueError, match="protocol scores"):
        bench.evaluate(test.outputs[:-1], test.outputs[:-1], len(test))
    with pytest.raises(ValueError, match="differ"):
        bench.evaluate(test.outputs, test.outputs[:, :6], len(test))


def test_one_dlinear_epoch_beats_repeat(dm: ForecastDataModule) -> None:
    repeat = bench.run_repeat(dm, "synthetic")
    dlinear = bench.run_dlinear(dm, "etth1", seed=1, max_epochs=1)
    assert dlinear["epochs"] == 1 and dlinear["windows"] == repeat["windows"]
    assert dlinear["mse"] < repeat["mse"]


# ---------------------------------------------------------------------- results
def _row(model: str, seed: int | None, mse: float, horizon: int = 96,
         variant: str | None = None) -> dict:
    return bench.row(model, "etth1", horizon, seed, {"mse": mse, "mae": mse, "windows": 2785},
                     1.0, 1, "", variant)


def test_writer_merges_rows_by_key(tmp_path: Path) -> None:
    bench.write_results([_row("repeat", None, 1.3), _row("dlinear", 1, 0.40)], tmp_path)
    bench.write_results([_row("dlinear", 1, 0.38), _row("dlinear", 2, 0.39),
                         _row("ours", 1, 0.37, variant="segment-lstm"),
                         _row("ours", 1, 0.36, variant="segment-gru")], tmp_path)
    rows = json.loads((tmp_path / "forecast.json").read_text())["rows"]
    assert len(rows) == 5
    assert {r["mse"] for r in rows if r["model"] == "dlinear"} == {0.38, 0.39}
    text = (tmp_path / "FORECAST.md").read_text()
    assert "0.385 ± 0.007" in text  # DLinear's two seeds
    assert "beats DLinear on mean test MSE at 1 of 1 points" in text
    assert "segment-gru" in text and "-0.0100" in text  # the ablation's paired difference
    assert "drop_last" in text and "0.472" in text  # the published anchors
    # measured rows are not measured again (ours: its run directories decide)
    assert bench._done(tmp_path) == {("repeat", "etth1", 96, None), ("dlinear", "etth1", 96, 1),
                                     ("dlinear", "etth1", 96, 2)}


# ------------------------------------------------------------------ ours: resume
def test_ours_reuses_a_finished_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = bench.run_dir(tmp_path, "segment-lstm", "etth1", 96, 1)
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps(
        {"test/mse": 0.37, "test/mae": 0.40, "val/mse": 0.64, "checkpoint": ""}))
    (run / "time.json").write_text(json.dumps({"train_s": 123.0}))

    def no_subprocess(*args: object, **kwargs: object) -> None:
        raise AssertionError("a finished run must not be redone")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    result = bench.run_ours("etth1", 96, 1, tmp_path)
    assert (result["mse"], result["mae"], result["train_s"]) == (0.37, 0.40, 123.0)
    assert result["variant"] == "segment-lstm" and "reused" in result["notes"]


def test_ours_runs_train_py_once_and_times_it(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_train(command: list[str], **kwargs: object) -> None:
        calls.append(command)
        out = Path(next(c for c in command if c.startswith("hydra.run.dir=")).split("=", 1)[1])
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(
            {"test/mse": 0.5, "test/mae": 0.5, "val/mse": 0.6, "checkpoint": ""}))

    monkeypatch.setattr(subprocess, "run", fake_train)
    first = bench.run_ours("etth1", 192, 2, tmp_path, "segment-gru")
    second = bench.run_ours("etth1", 192, 2, tmp_path, "segment-gru")
    assert len(calls) == 1
    assert {"experiment=etth1", "data.horizon=192", "seed=2", "model.encoder.cell=gru"} <= set(
        calls[0])
    assert first["train_s"] is not None and second["train_s"] == first["train_s"]
