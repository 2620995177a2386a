"""The forecasting commands on a tiny model of the embedded series: ``predict --csv`` (forecasts
at the future timestamps in original units; one error line and nothing written for a bad
table) and ``backtest`` (the eval command's windows and MSE, no leakage, the export alike)."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import compose_train

from nlp_lstm.commands.backtest import main as backtest_main
from nlp_lstm.commands.predict import main as predict_main
from nlp_lstm.core.cli import compose_config
from nlp_lstm.drivers.evaluate import evaluate
from nlp_lstm.drivers.predict import task_table
from nlp_lstm.drivers.registry import load_model
from nlp_lstm.drivers.train import train
from nlp_lstm.forecasting import Forecaster
from nlp_lstm.forecasting.backtest import backtest
from nlp_lstm.forecasting.data import SyntheticSeries
from nlp_lstm.forecasting.series import (
    Series,
    StandardScaler,
    format_stamp,
    num_windows,
    read_csv,
    split_rows,
)
from nlp_lstm.forecasting.table import TABLE

L, H = 48, 12
TINY = ["task=forecasting", f"data.input_length={L}", f"data.horizon={H}",
        "data.source.rows=1200", "model.segment=12", "model.embedding_dim=8",
        "model.encoder.hidden_size=8", "model.scheduler.warmup_steps=2", "trainer.max_epochs=1",
        "trainer.accelerator=cpu", "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory, one_thread: None) -> str:
    out = tmp_path_factory.mktemp("forecast_commands")
    train(compose_train(out, TINY))
    return json.loads((out / "metrics.json").read_text())["checkpoint"]


@pytest.fixture(scope="module")
def series() -> Series:
    return SyntheticSeries(rows=1200).read(Path())


def write_csv(path: Path, stamps: list[str], columns: list[str], rows: np.ndarray | list) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["date", *columns])
        for stamp, row in zip(stamps, rows, strict=True):  # floats in full (repr)
            writer.writerow([stamp, *(v if isinstance(v, str) else repr(v) for v in row)])
    return path


def series_csv(path: Path, series: Series, rows: slice = slice(None)) -> Path:
    """The series (or some of its rows) as a CSV, with a column the model does not read."""
    values = np.column_stack([series.values[rows], np.arange(len(series.values))[rows]])
    return write_csv(path, [format_stamp(t) for t in series.timestamps[rows]],
                     [*series.columns, "extra"], values.tolist())


def read_table(text: str) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1:]


# ------------------------------------------------------------------- predict
def test_predict_csv_writes_forecasts_at_the_future_timestamps(
        ckpt: str, series: Series, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = load_model(ckpt)
    path = series_csv(tmp_path / "recent.csv", series, slice(800, 900))
    capsys.readouterr()
    predict_main(["--ckpt", ckpt, "--csv", str(path)])
    printed = capsys.readouterr().out
    header, rows = read_table(printed)
    assert header == ["date", *model.targets] and len(rows) == H
    step = series.timestamps[1] - series.timestamps[0]
    assert [r[0] for r in rows] == [format_stamp(series.timestamps[899] + step * k)
                                    for k in range(1, H + 1)]
    # In original units: what predict gives for the same rows, to the printed digit.
    expected = model.predict([series.values[852:900].tolist()])[0][0]["forecast"]
    assert np.array_equal(np.asarray([r[1:] for r in rows], dtype=float), expected)

    out = tmp_path / "fc.csv"
    predict_main(["--ckpt", ckpt, "--csv", str(path), "--out", str(out)])
    assert capsys.readouterr().out == "" and out.read_text() == printed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fc.csv", "recent.csv"]


def test_a_quantile_model_writes_a_column_per_target_and_quantile(series: Series) -> None:
    scaler = StandardScaler.fit(series.values[:840])
    model = Forecaster(scaler.to_json(), list(series.columns), ["x0", "OT"], L, H, segment=12,
                       embedding_dim=8, encoder={"hidden_size": 8}, quantiles=[0.1, 0.5, 0.9])
    inputs = [{"timestamps": [format_stamp(t) for t in series.timestamps[:L]],
               "rows": series.values[:L].tolist()}]
    results = model.predict(inputs)[0]
    out = io.StringIO()
    TABLE.write(results, out, model)
    header, rows = read_table(out.getvalue())
    assert header == ["date", "x0", "OT", "x0_q0.1", "x0_q0.5", "x0_q0.9", "OT_q0.1",
                      "OT_q0.5", "OT_q0.9"]
    assert len(rows) == H
    assert float(rows[3][7]) == results[0]["quantiles"]["0.5"][3][1] == float(rows[3][2])


def bad_table(kind: str, series: Series, path: Path) -> tuple[list[str], str]:
    """A CSV that is wrong in one way; the extra arguments and the expected message."""
    stamps = [format_stamp(t) for t in series.timestamps[800:900]]
    rows = series.values[800:900].tolist()
    columns = list(series.columns)
    if kind == "too few rows":
        write_csv(path, stamps[:30], columns, rows[:30])
        return [], "has 30 rows; the model reads the last 48, so at least 48 rows are needed"
    if kind == "nan":
        rows[70][1] = float("nan")
        write_csv(path, stamps, columns, rows)
        return [], "line 72, column 'x1': 'nan' (missing values must be filled"
    if kind == "irregular":
        stamps[50] = stamps[50].replace(":00:00", ":30:00")
        write_csv(path, stamps, columns, rows)
        return [], "line 52: irregular timestamps"
    if kind == "duplicate":
        stamps[50] = stamps[49]
        write_csv(path, stamps, columns, rows)
        return [], f"line 52: timestamp {stamps[49]} duplicates the previous row's"
    if kind == "missing column":
        write_csv(path, stamps, ["x0", "x2", "OT"], [[r[0], r[2], r[3]] for r in rows])
        return [], "has no column(s) ['x1']; its columns: ['x0', 'x2', 'OT']"
    if kind == "no date column":
        write_csv(path, stamps, columns, rows)
        return ["--date-column", "time"], "has no 'time' column; its header: ['date', 'x0'"
    if kind == "not a number":
        rows[10][0] = "n/a"
        write_csv(path, stamps, columns, rows)
        return [], "line 12, column 'x0': 'n/a', not a number"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["too few rows", "nan", "irregular", "duplicate",
                                  "missing column", "no date column", "not a number"])
def test_a_bad_table_exits_2_with_one_line_and_writes_nothing(
        ckpt: str, series: Series, tmp_path: Path, kind: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "recent.csv"
    extra, message = bad_table(kind, series, path)
    out = tmp_path / "fc.csv"
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        predict_main(["--ckpt", ckpt, "--csv", str(path), "--out", str(out), *extra])
    captured = capsys.readouterr()
    assert e.value.code == 2 and captured.out == "", captured
    assert message in captured.err and len(captured.err.strip().splitlines()) == 1, captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recent.csv"]


def test_csv_needs_a_task_with_a_table_and_no_other_inputs(
        ckpt: str, series: Series, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        task_table("sentiment")
    assert e.value.code == 2
    assert "--csv: a sentiment model reads no tables" in capsys.readouterr().err
    path = series_csv(tmp_path / "recent.csv", series, slice(0, 100))
    with pytest.raises(SystemExit) as e:
        predict_main(["--ckpt", ckpt, "--csv", str(path), "[[1, 2, 3, 4]]"])
    assert e.value.code == 2 and "not both" in capsys.readouterr().err


# ------------------------------------------------------------------ backtest
def test_backtest_with_stride_1_reproduces_eval(ckpt: str, series: Series, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    cfg = compose_config("eval", ["task=forecasting", f"ckpt_path={ckpt}", "split=test",
                                  "data.source.rows=1200", "accelerator=cpu",
                                  f"output={tmp_path / 'eval.json'}"])
    metrics = evaluate(cfg)
    path = series_csv(tmp_path / "synthetic.csv", series)
    out = tmp_path / "backtest.csv"
    capsys.readouterr()
    backtest_main(["--ckpt", ckpt, "--csv", str(path), "--out", str(out)])
    result = json.loads(capsys.readouterr().out)
    start, end = split_rows(series, "test", L)
    assert result["windows"] == metrics["windows"] == num_windows(end - start, L, H)
    assert result["mse"] == pytest.approx(metrics["test/mse"], abs=1e-5)
    assert result["mae"] == pytest.approx(metrics["test/mae"], abs=1e-5)
    first = start + L  # the first origin's first forecast row
    assert result["split"] == "test"
    assert result["first_origin"] == format_stamp(series.timestamps[first - 1])

    header, rows = read_table(out.read_text())
    assert header == ["origin", "step", "date", "x0", "x0_true", "x1", "x1_true", "x2",
                      "x2_true", "OT", "OT_true"]
    assert len(rows) == result["windows"] * H
    assert rows[1][:3] == [format_stamp(series.timestamps[first - 1]), "2",
                           format_stamp(series.timestamps[first + 1])]
    assert float(rows[1][-1]) == pytest.approx(series.values[first + 1, 3], abs=1e-6)

    backtest_main(["--ckpt", ckpt, "--csv", str(path), "--stride", "2"])
    strided = json.loads(capsys.readouterr().out)
    assert strided["windows"] == (result["windows"] + 1) // 2
    assert strided["mse"] != result["mse"]


def test_a_forecast_never_reads_rows_at_or_after_its_origin(ckpt: str, series: Series) -> None:
    model = load_model(ckpt)
    before = backtest(model, series, "val")
    k = 20
    t = before.origins[k]
    changed = series.values.copy()
    changed[t:] += 100.0
    after = backtest(model, Series(series.name, series.timestamps, series.columns, changed),
                     "val")
    assert np.array_equal(after.forecasts[: k + 1], before.forecasts[: k + 1])
    assert not np.allclose(after.forecasts[k + 1], before.forecasts[k + 1])
    assert not np.allclose(after.truth[k], before.truth[k])  # its horizon did change


def test_backtest_errors_are_one_line(ckpt: str, series: Series, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = series_csv(tmp_path / "short.csv", series, slice(0, 55))  # 11 test rows
    with pytest.raises(SystemExit) as e:
        backtest_main(["--ckpt", ckpt, "--csv", str(path), "--out", str(tmp_path / "b.csv")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "holds no window of 48 inputs and 12 targets" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["short.csv"]


def test_the_export_backtests_as_the_checkpoint(ckpt: str, series: Series, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from nlp_lstm.commands.export import export

    export(ckpt, tmp_path / "onnx")
    path = series_csv(tmp_path / "synthetic.csv", series)
    capsys.readouterr()
    backtest_main(["--ckpt", ckpt, "--csv", str(path)])
    theirs = json.loads(capsys.readouterr().out)
    backtest_main(["--onnx", str(tmp_path / "onnx"), "--csv", str(path)])
    ours = json.loads(capsys.readouterr().out)
    assert ours["windows"] == theirs["windows"]
    assert ours["mse"] == pytest.approx(theirs["mse"], abs=1e-5)
    recent = series_csv(tmp_path / "recent.csv", series, slice(800, 900))
    predict_main(["--onnx", str(tmp_path / "onnx"), "--csv", str(recent)])
    onnx_rows = read_table(capsys.readouterr().out)
    predict_main(["--ckpt", ckpt, "--csv", str(recent)])
    ckpt_rows = read_table(capsys.readouterr().out)
    assert onnx_rows[0] == ckpt_rows[0] and [r[0] for r in onnx_rows[1]] == [
        r[0] for r in ckpt_rows[1]]
    assert np.allclose(np.asarray([r[1:] for r in onnx_rows[1]], dtype=float),
                       np.asarray([r[1:] for r in ckpt_rows[1]], dtype=float), atol=1e-4)


# ----------------------------------------------------------------- real data
@pytest.mark.realdata
def test_backtest_reproduces_eval_on_etth1(tmp_path: Path, one_thread: None,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    root = os.environ.get("NLP_LSTM_DATA")
    if not root or not (Path(root) / "ett" / "ETTh1.csv.gz").is_file():
        pytest.skip("set NLP_LSTM_DATA to the data root (with ett/)")
    data = ["data=ett", f"data.root={root}", f"data.input_length={L}", f"data.horizon={H}"]
    train(compose_train(tmp_path, [*TINY[:1], *data, *TINY[4:], "trainer.limit_train_batches=5",
                                   "trainer.limit_val_batches=2",
                                   "trainer.log_every_n_steps=1"]))
    ckpt = json.loads((tmp_path / "metrics.json").read_text())["checkpoint"]
    metrics = evaluate(compose_config("eval", ["task=forecasting", f"ckpt_path={ckpt}",
                                               "split=test", "accelerator=cpu", *data,
                                               f"output={tmp_path / 'eval.json'}"]))
    capsys.readouterr()
    backtest_main(["--ckpt", ckpt, "--csv", str(Path(root) / "ett" / "ETTh1.csv.gz")])
    result = json.loads(capsys.readouterr().out)
    assert result["windows"] == metrics["windows"] == 2880 - H + 1
    assert result["mse"] == pytest.approx(metrics["test/mse"], abs=1e-5)
    ett = read_csv(Path(root) / "ett" / "ETTh1.csv.gz")
    assert result["last_origin"] == format_stamp(ett.timestamps[14400 - H - 1])
