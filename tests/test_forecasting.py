"""The forecasting task on the embedded series: tiny runs through the generic train, eval and
predict, the data module's protocol, the network's shapes and causality, and bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import compose_train

from nlp_lstm.commands.predict import main as predict_main
from nlp_lstm.core.cli import compose_config
from nlp_lstm.data.loader import LoaderOptions
from nlp_lstm.drivers.evaluate import evaluate
from nlp_lstm.drivers.registry import load_model
from nlp_lstm.drivers.train import train
from nlp_lstm.forecasting import ForecastDataModule, Forecaster, SegmentForecaster
from nlp_lstm.forecasting.data import SyntheticSeries
from nlp_lstm.forecasting.series import repeat_forecast, scores

TINY = ["task=forecasting", "data.input_length=48", "data.horizon=12", "data.source.rows=1200",
        "model.segment=12", "model.embedding_dim=16", "model.encoder.hidden_size=16",
        "model.scheduler.warmup_steps=5", "model.optimizer.lr=0.005", "trainer.max_epochs=5",
        "trainer.accelerator=cpu",
        "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("forecast")
    train(compose_train(out, TINY))
    return out


def datamodule(**overrides: object) -> ForecastDataModule:
    settings = {"input_length": 48, "horizon": 12} | overrides
    dm = ForecastDataModule(SyntheticSeries(rows=1200), loader=LoaderOptions(batch_size=16),
                            **settings)
    dm.setup()
    return dm


# ---------------------------------------------------------------- data module
def test_windows_scaler_and_splits_follow_the_protocol() -> None:
    dm = datamodule()
    rows = dm.series.values
    assert np.allclose(dm.scaler.mean, rows[:840].mean(0))  # 70% of 1,200 rows train
    val = dm.split_windows("val")
    assert len(val) == (120 + 48) - 48 - 12 + 1  # 10%, inputs from 48 rows before
    inputs, targets = val[0]
    assert inputs.shape == (48, 4) and targets.shape == (12, 4)
    assert np.allclose(targets[0], dm.scaler.transform(rows[840]))
    assert len(datamodule(compat_drop_last=32).split_windows("test")) == 224  # 229 -> 7 x 32
    batch = next(iter(dm.dataloader("train", shuffle=True)))
    assert batch["inputs"].shape == (16, 48, 4) and batch["targets"].shape == (16, 12, 4)
    ms = datamodule(features="MS")
    assert ms.input_columns == ["x0", "x1", "x2", "OT"] and ms.target_columns == ["OT"]
    assert ms.split_windows("val")[0][1].shape == (12, 1)
    assert datamodule(features="S").input_columns == ["OT"]


# -------------------------------------------------------------------- network
@pytest.mark.parametrize("normalization", ["last", "revin", "none"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_the_network_maps_windows_to_forecasts(normalization: str, cell: str) -> None:
    torch.manual_seed(0)
    net = SegmentForecaster(48, 12, 3, [2], segment=12, embedding_dim=8,
                            encoder={"hidden_size": 8, "cell": cell},
                            normalization=normalization)
    x = torch.randn(5, 48, 3)
    y = net(x)
    assert y.shape == (5, 12, 1)
    y.sum().backward()
    # Channel independence: a channel's forecast reads that channel only.
    changed = x.clone()
    changed[:, :, 0] += 10.0
    assert torch.allclose(net(changed), y, atol=1e-5)
    if normalization == "last":  # a level shift of the window shifts the forecast alike
        assert torch.allclose(net(x + 3.0), y + 3.0, atol=1e-4)


def test_network_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="must be a multiple of every segment"):
        SegmentForecaster(50, 12, 3, [0], segment=12)
    with pytest.raises(ValueError, match="normalization must be one of"):
        SegmentForecaster(48, 12, 3, [0], segment=12, normalization="minmax")
    with pytest.raises(ValueError, match="targets must be channel indices"):
        SegmentForecaster(48, 12, 3, [3], segment=12)


# ---------------------------------------------------------------- end to end
def test_training_beats_repeating_the_last_value(run: Path) -> None:
    metrics = json.loads((run / "metrics.json").read_text())
    dm = datamodule()
    val = dm.split_windows("val")
    repeat = scores(repeat_forecast(val.inputs, 12), val.outputs)
    assert metrics["val/mse"] < 0.5 * repeat["mse"], (metrics, repeat)
    assert {"test/mse", "test/mae", "val/mae"} <= set(metrics)


def test_eval_and_predict_through_the_generic_commands(run: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    ckpt = json.loads((run / "metrics.json").read_text())["checkpoint"]
    model = load_model(ckpt)
    assert isinstance(model, Forecaster) and model.horizon == 12
    cfg = compose_config("eval", ["task=forecasting", f"ckpt_path={ckpt}", "split=val",
                                  "data.source.rows=1200", "accelerator=cpu",
                                  f"output={tmp_path / 'e.json'}"])
    result = evaluate(cfg)
    metrics = json.loads((run / "metrics.json").read_text())
    assert result["val/mse"] == pytest.approx(metrics["val/mse"], rel=1e-5)
    assert result["windows"] == 109

    rows = SyntheticSeries(rows=1200).read(Path()).values
    window = rows[900:948].tolist()
    capsys.readouterr()
    predict_main(["--ckpt", ckpt, json.dumps(window), json.dumps(rows[:960].tolist())])
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert np.asarray(out[0]["forecast"]).shape == (12, 4)
    assert out[0] == model.predict([window])[0][0]
    # Causality: the forecast from rows before t reads nothing at or after t.
    later = rows.copy()
    later[960:] = 1e6
    assert model.predict([later[:960]])[0] == model.predict([rows[:960]])[0] == [out[1]]


@pytest.mark.parametrize(("line", "message"), [
    ("[[1, 2, 3, 4]]", "has 1 rows; the model reads the last 48"),
    ("[[1, 2]]", "expected rows of 4 values"),
    ("not json", "is not JSON"),
    ("[1, 2]", "expected a JSON list of rows"),
    (json.dumps([[1.0, 2.0, 3.0, float("nan")]] * 48), "missing or non-finite"),
])
def test_bad_predict_inputs_exit_2_with_one_line(run: Path, line: str, message: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = json.loads((run / "metrics.json").read_text())["checkpoint"]
    with pytest.raises(SystemExit) as e:
        predict_main(["--ckpt", ckpt, line])
    err = capsys.readouterr().err
    assert e.value.code == 2 and message in err and len(err.strip().splitlines()) == 1, err


# ------------------------------------------------------------ export and serving
def test_export_runtime_and_server_answer_as_the_checkpoint(run: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    import httpx
    from conftest import ROOT, serving

    from nlp_lstm.commands.export import export
    from nlp_lstm.commands.serve import OnnxBackend
    from nlp_lstm.drivers.registry import load_export

    ckpt = json.loads((run / "metrics.json").read_text())["checkpoint"]
    model = load_model(ckpt)
    manifest = export(ckpt, tmp_path / "onnx")
    assert manifest["task"] == "forecasting" and manifest["fitted"]["scaler"]["kind"] == \
        "StandardScaler"
    rows = SyntheticSeries(rows=1200).read(Path()).values
    windows = [rows[s : s + 48].tolist() for s in (900, 950, 1000)]
    onnx = load_export(tmp_path / "onnx", threads=1)
    ours, theirs = onnx.predict(windows)[0], model.predict(windows)[0]
    assert np.allclose([r["forecast"] for r in ours], [r["forecast"] for r in theirs],
                       atol=1e-4)
    code = ("import sys, json\nimport nlp_lstm.deploy.runtime as rt\n"
            "m = rt.load(sys.argv[1], threads=1)\n"
            "print(json.dumps(m.predict(json.loads(sys.argv[2]))[0]))\n"
            "assert 'torch' not in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "onnx"),
                           json.dumps(windows[:1])], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ours[:1]

    with serving(OnnxBackend(tmp_path / "onnx", threads=1)) as url:
        health = httpx.get(f"{url}/health", timeout=30).json()
        assert health["task"] == "forecasting" and health["endpoint"] == "/forecast"
        assert health["max_input_tokens"] == 48
        r = httpx.post(f"{url}/forecast", json={"series": windows}, timeout=60)
        assert r.status_code == 200 and r.json() == {"results": ours}
        r = httpx.post(f"{url}/forecast", json={"series": [rows[:49].tolist()]}, timeout=60)
        assert r.status_code == 413 and r.json()["limit"] == 48, r.text
        r = httpx.post(f"{url}/forecast", json={"series": [rows[:47].tolist()]}, timeout=60)
        assert r.status_code == 422 and "has 47 rows" in r.json()["error"], r.text
        nan = [[*row[:3], float("nan")] for row in windows[0]]
        r = httpx.post(f"{url}/forecast", content=json.dumps({"series": [nan]}),
                       headers={"content-type": "application/json"}, timeout=60)
        assert r.status_code == 422 and "non-finite" in r.json()["error"], r.text


# ------------------------------------------- the article's options, covariates, quantiles
OPTIONS = {
    "multi-scale": {"segment": [6, 12, 24]},
    "moving averages": {"moving_averages": [3, 12]},
    "conv front end": {"conv_kernel": 5},
    "transformer mixer": {"mixer_layers": 1},
    "covariates": {"covariates": 2},
    "quantiles": {"quantiles": [0.1, 0.5, 0.9]},
    "everything": {"segment": [12, 24], "moving_averages": [6], "conv_kernel": 3,
                   "mixer_layers": 1, "covariates": 2, "quantiles": [0.25, 0.5]},
}


@pytest.mark.parametrize("option", OPTIONS)
def test_every_option_keeps_shapes_channel_independence_and_causality(option: str) -> None:
    torch.manual_seed(0)
    settings = {"segment": 12} | OPTIONS[option]
    net = SegmentForecaster(48, 12, 3, [1, 2], embedding_dim=8, encoder={"hidden_size": 8},
                            **settings).eval()
    x = torch.randn(5, 48, 3)
    marks = (torch.rand(5, 48, 2) - 0.5, torch.rand(5, 12, 2) - 0.5) \
        if settings.get("covariates") else ()
    y = net(x, *marks)
    q = len(settings.get("quantiles", []))
    assert y.shape == ((5, 12, 2, q) if q else (5, 12, 2))
    y.sum().backward()
    changed = x.clone()
    changed[:, :, 0] += 10.0  # channel 0 is not a target: nothing may read it
    assert torch.allclose(net(changed, *marks), y, atol=1e-5)
    if q:
        assert (y.diff(dim=3) >= 0).all()  # quantiles never cross
    # Within a window, row t's features read rows <= t only: the state after the first
    # segments is unchanged by later rows (checked on the features the encoder reads).
    from nlp_lstm.forecasting.net import trailing_means
    series = torch.randn(4, 48, dtype=torch.float64)
    later = series.clone()
    later[:, 30:] = 1e3
    assert torch.allclose(trailing_means(series, 12)[:, :30], trailing_means(later, 12)[:, :30])


def test_trailing_means_equal_the_protocol_moving_average() -> None:
    from nlp_lstm.forecasting.net import trailing_means
    from nlp_lstm.forecasting.series import moving_average
    series = np.random.default_rng(0).normal(size=(3, 40))
    for k in (2, 7, 40, 60):
        expected = moving_average(series[..., None], k)[..., 0]
        assert np.allclose(trailing_means(torch.from_numpy(series), k).numpy(), expected)


def test_option_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="multiple of every segment length"):
        SegmentForecaster(48, 12, 3, [0], segment=[12, 10])
    with pytest.raises(ValueError, match=r"include 0\.5"):
        SegmentForecaster(48, 12, 3, [0], segment=12, quantiles=[0.1, 0.9])
    with pytest.raises(ValueError, match="increasing levels"):
        SegmentForecaster(48, 12, 3, [0], segment=12, quantiles=[0.9, 0.5])
    with pytest.raises(ValueError, match="moving-average kernels must be >= 2"):
        SegmentForecaster(48, 12, 3, [0], segment=12, moving_averages=[1])
    with pytest.raises(ValueError, match="pass marks_in"):
        SegmentForecaster(48, 12, 3, [0], segment=12, covariates=2)(torch.randn(1, 48, 3))
    with pytest.raises(ValueError, match="unknown calendar feature"):
        datamodule(covariates=["fortnight"])


def test_pinball_loss() -> None:
    from nlp_lstm.forecasting.module import pinball_loss
    predicted = torch.tensor([0.0, 0.0]).reshape(1, 1, 1, 2)  # (B, H, C, Q)
    target = torch.tensor([1.0]).reshape(1, 1, 1)
    # Under by 1: level 0.1 costs 0.1, level 0.9 costs 0.9; their mean 0.5.
    assert pinball_loss(predicted, target, torch.tensor([0.1, 0.9])).item() == pytest.approx(0.5)
    assert pinball_loss(predicted, -target, torch.tensor([0.1, 0.9])).item() == \
        pytest.approx(0.5)


@pytest.fixture(scope="module")
def quantile_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("forecast_quantiles")
    train(compose_train(out, [*TINY, "data.covariates=[hour,weekday]",
                              "model.quantiles=[0.1,0.5,0.9]", "model.moving_averages=[6]",
                              "model.conv_kernel=3", "model.segment=[12,24]",
                              "trainer.max_epochs=2"]))
    return out


def test_quantiles_and_covariates_end_to_end(quantile_run: Path, tmp_path: Path) -> None:
    from nlp_lstm.commands.export import export
    from nlp_lstm.drivers.registry import load_export

    metrics = json.loads((quantile_run / "metrics.json").read_text())
    model = load_model(metrics["checkpoint"])
    assert model.quantiles == [0.1, 0.5, 0.9] and model.covariates == ["hour", "weekday"]
    series = SyntheticSeries(rows=1200).read(Path())
    stamps = [str(t).replace("T", " ") for t in series.timestamps[900:948]]
    window = {"timestamps": stamps, "rows": series.values[900:948].tolist()}
    result = model.predict([window])[0][0]
    assert result["timestamps"][0] == str(series.timestamps[948]).replace("T", " ")
    assert len(result["timestamps"]) == 12
    q = np.asarray([result["quantiles"][k] for k in ("0.1", "0.5", "0.9")])  # (Q, H, C)
    assert q.shape == (3, 12, 4) and (np.diff(q, axis=0) >= 0).all()
    assert result["forecast"] == result["quantiles"]["0.5"]
    # The truth falls inside the 10-90% band more often than not on held-out rows.
    truth = series.values[948:960]
    inside = ((q[0] <= truth) & (truth <= q[2])).mean()
    assert inside > 0.4, inside
    with pytest.raises(ValueError, match="reads calendar covariates"):
        model.predict([series.values[900:948].tolist()])
    with pytest.raises(ValueError, match="irregular"):
        model.predict([{"timestamps": [*stamps[:-1], "2030-01-01 00:00:00"],
                        "rows": window["rows"]}])

    export(metrics["checkpoint"], tmp_path / "onnx")
    onnx = load_export(tmp_path / "onnx", threads=1)
    theirs = onnx.predict([window])[0][0]
    assert theirs["timestamps"] == result["timestamps"]
    for k in result["quantiles"]:
        assert np.allclose(theirs["quantiles"][k], result["quantiles"][k], atol=1e-4)


def test_forecasts_are_plotted_against_the_truth(quantile_run: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from nlp_lstm.commands.plot import main as plot_main
    from nlp_lstm.forecasting.plot import plot_forecasts

    model = load_model(json.loads((quantile_run / "metrics.json").read_text())["checkpoint"])
    series = SyntheticSeries(rows=1200).read(Path())
    out = plot_forecasts(model, series, tmp_path / "f.png", "x1", origins=2)
    assert out.stat().st_size > 10_000
    with pytest.raises(ValueError, match="channel 'y' is not forecast"):
        plot_forecasts(model, series, tmp_path / "g.png", "y")
    with pytest.raises(SystemExit) as e:
        plot_main(["--ckpt", "x.ckpt"])
    assert e.value.code == 2 and "--csv" in capsys.readouterr().err


def test_predict_selects_quantiles(quantile_run: Path, run: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = json.loads((quantile_run / "metrics.json").read_text())["checkpoint"]
    series = SyntheticSeries(rows=1200).read(Path())
    window = json.dumps({"timestamps": [str(t) for t in series.timestamps[900:948]],
                         "rows": series.values[900:948].tolist()})
    capsys.readouterr()
    predict_main(["--ckpt", ckpt, window, "--quantiles", "0.1", "0.9"])
    result = json.loads(capsys.readouterr().out)
    assert list(result["quantiles"]) == ["0.1", "0.9"]
    for args, message in (([ckpt, window, "--quantiles", "0.3"], "trained for the levels"),
                          ([json.loads((run / "metrics.json").read_text())["checkpoint"],
                            window, "--quantiles", "0.5"], "forecasts no quantiles")):
        with pytest.raises(SystemExit) as e:
            predict_main(["--ckpt", *args])
        err = capsys.readouterr().err
        assert e.value.code == 2 and message in err and len(err.strip().splitlines()) == 1
