"""Long-horizon forecasting on ETTh1 and ETTm1 under one evaluator: our segment model against
the "repeat the last value" baseline, DLinear re-run here, and a library peer a user would pick
instead (darts ``BlockRNNModel`` LSTM).

    NLP_LSTM_DATA=../shared/data OMP_NUM_THREADS=1 python -m benchmarks.forecast \\
        [--data etth1 ettm1] [--horizons 96 192 336 720] [--seeds 1 2 3] \\
        [--models repeat dlinear ours peer] [--runs outputs/forecast_bench] \\
        [--out benchmarks/results] [--quick] [--ablations] [--threads 1]

The protocol (``nlp_lstm.forecasting.series``): multivariate (7 channels in and out), L = 336
input rows, horizons 96/192/336/720, the fixed ETT borders, values standardised with the
training rows' statistics, MSE and MAE over every test window (no dropped last batch). Every
model's test forecasts (N, H, C) go through the one ``evaluate`` below, which also checks that N
is the protocol's window count.

Runners (each row: model, data, horizon, seed, variant, mse, mae, windows, train_s, epochs,
notes):

- ``repeat``: ``series.repeat_forecast`` on the test windows (nothing trained, no seed).
- ``dlinear``: ``nlp_lstm.forecasting.dlinear.DLinear`` trained here with the paper's published
  recipe (``run_longExp.py`` defaults plus its ETT scripts): Adam, MSE, lr 0.005 (ETTh1) /
  0.0001 (ETTm1), batch 32 (ETTh1) / 8 (ETTm1), up to 10 epochs, the learning rate halved every
  epoch after the first (``lradj type1``), early stopping with patience 3 on validation MSE, the
  best validation weights kept.
- ``ours``: ``python train.py experiment=<data> data.horizon=H seed=S`` in a subprocess, one run
  directory per (variant, data, horizon, seed) under ``--runs``. A run directory that already
  holds ``metrics.json`` is reused, never redone; its train time comes from the ``time.json``
  written next to it after the run. The best checkpoint's test forecasts are re-scored by
  ``evaluate`` (``metrics.json``'s numbers are the fallback when the checkpoint cannot load).
- ``peer``: darts ``BlockRNNModel(model="LSTM")`` with darts' defaults except what the protocol
  fixes (input chunk 336, output chunk H, 7 channels, fitted on the standardised training rows)
  and the epoch count (``PEER_EPOCHS``, so one point takes minutes on one core, not an hour); its
  forecasts from every test origin (stride 1) come from ``historical_forecasts``. Needs the
  optional extra: ``pip install -e '.[forecast-peers]' torch==<your torch>``.

Rows accumulate in ``OUT/forecast.json`` across invocations (a new row replaces the one with
the same model, data, horizon, seed and variant); ``OUT/FORECAST.md`` is rewritten from all of
them: per data set MSE / MAE (mean ± sample std over seeds), windows and train time, the
published anchors apart, and the ablations of ``VARIANTS`` (``--ablations``: ETTh1, H 96 and
336, each variant's difference to ``segment-lstm`` paired by seed).

Rows of ``repeat``, ``dlinear`` and ``peer`` already in ``OUT/forecast.json`` are not measured
again unless ``--redo``, so an interrupted call resumes where it stopped.

``--quick`` trains each asked-for model one epoch on the first data set and horizon, prints the
time and the projected full run (nothing is written to the results), and stops.

Legend: N windows, L input length, H horizon, C channels.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nlp_lstm.forecasting.data import ForecastDataModule, SeriesFile, Windows
from nlp_lstm.forecasting.dlinear import DLinear
from nlp_lstm.forecasting.series import num_windows, repeat_forecast, scores, split_rows

ROOT = Path(__file__).resolve().parent.parent
INPUT_LENGTH = 336
HORIZONS = (96, 192, 336, 720)
DATA = {"etth1": "ett/ETTh1.csv.gz", "ettm1": "ett/ETTm1.csv.gz"}
MODELS = ("repeat", "dlinear", "ours", "peer")
#: Our model's variants: name -> train.py overrides on top of ``experiment=<data>``.
#: Our model and its ablations: the article's three ideas one by one, and the cell.
VARIANTS: dict[str, list[str]] = {
    "segment-lstm": [],
    "multi-scale": ["model.segment=[12,24,48]"],
    "moving-averages": ["model.moving_averages=[6,24,168]"],
    "conv-front-end": ["model.conv_kernel=5"],
    "transformer-mixer": ["model.mixer_layers=1"],
    "segment-gru": ["model.encoder.cell=gru"],
}
BASE_VARIANT = "segment-lstm"
ABLATION_DATA, ABLATION_HORIZONS = "etth1", (96, 336)
#: DLinear's published recipe per data set (LTSF-Linear scripts/EXP-LongForecasting/Linear).
DLINEAR_RECIPE = {"etth1": {"lr": 0.005, "batch": 32}, "ettm1": {"lr": 0.0001, "batch": 8}}
DLINEAR_EPOCHS, DLINEAR_PATIENCE = 10, 3
#: The peer's epochs (darts' default is 100): about 5,000 optimizer steps of batch 32 either way,
#: a few minutes per point on one core.
PEER_EPOCHS = {"etth1": 20, "ettm1": 5}
PEER_INSTALL = (f"pip install -e '.[forecast-peers]' torch=={torch.__version__.split('+')[0]}"
                " (the pin keeps pip from replacing torch)")
#: Published test MSE at L = 336 (DLinear: Zeng et al. 2023; PatchTST/42: Nie et al. 2023),
#: scored on full test batches only (their code's drop_last).
PUBLISHED = {
    "DLinear (published, L=336)": {"etth1": (0.375, 0.405, 0.439, 0.472),
                                   "ettm1": (0.299, 0.335, 0.369, 0.425)},
    "PatchTST/42 (published)": {"etth1": (0.375, 0.414, 0.431, 0.449),
                                "ettm1": (0.290, 0.332, 0.366, 0.420)},
}
KEY = ("model", "data", "horizon", "seed", "variant")


class PeerMissingError(RuntimeError):
    """The peer's library is not installed."""


# ------------------------------------------------------------------------------ protocol
def datamodule(data: str, horizon: int, root: str | None = None) -> ForecastDataModule:
    """The protocol's data module of an ETT data set (``etth1`` or ``ettm1``)."""
    dm = ForecastDataModule(source=SeriesFile(DATA[data]), input_length=INPUT_LENGTH,
                            horizon=horizon, features="M", root=root)
    dm.setup()
    return dm


def protocol_windows(dm: ForecastDataModule) -> int:
    """How many test windows the protocol scores: every one."""
    start, end = split_rows(dm.series, "test", dm.input_length)
    return num_windows(end - start, dm.input_length, dm.horizon)


def evaluate(forecasts: np.ndarray, targets: np.ndarray, expected: int) -> dict[str, float]:
    """The shared evaluator: forecasts and targets (N, H, C_out), standardised -> MSE, MAE and
    N (``series.scores`` over every window); a ValueError unless N is the protocol's count."""
    if forecasts.shape != targets.shape:
        raise ValueError(f"forecasts {forecasts.shape} and targets {targets.shape} differ")
    if len(forecasts) != expected:
        raise ValueError(f"{len(forecasts)} forecasts, but the protocol scores {expected} "
                         "test windows")
    return scores(np.asarray(forecasts, dtype=np.float64),
                  np.asarray(targets, dtype=np.float64))


def row(model: str, data: str, horizon: int, seed: int | None, result: dict[str, float],
        train_s: float | None, epochs: int | None, notes: str = "",
        variant: str | None = None) -> dict[str, Any]:
    return {"model": model, "data": data, "horizon": horizon, "seed": seed, "variant": variant,
            "mse": result["mse"], "mae": result["mae"], "windows": result["windows"],
            "train_s": None if train_s is None else round(train_s, 1), "epochs": epochs,
            "notes": notes}


@torch.no_grad()
def forecast(net: Callable[[torch.Tensor], torch.Tensor], inputs: np.ndarray,
             batch: int = 1024) -> np.ndarray:
    """A network's forecasts of every window: inputs (N, L, C) -> (N, H, C_out), float64."""
    out = [net(torch.from_numpy(np.ascontiguousarray(inputs[i:i + batch])).float()).double()
           for i in range(0, len(inputs), batch)]
    return torch.cat(out).numpy()  # (N, H, C_out)


# ------------------------------------------------------------------------------- runners
def run_repeat(dm: ForecastDataModule, data: str) -> dict[str, Any]:
    test = dm.split_windows("test")
    result = evaluate(repeat_forecast(test.inputs, dm.horizon), test.outputs,
                      protocol_windows(dm))
    return row("repeat", data, dm.horizon, None, result, 0.0, 0, "last input row repeated")


def train_dlinear(train: Windows, val: Windows, horizon: int, lr: float, batch: int, seed: int,
                  max_epochs: int = DLINEAR_EPOCHS, patience: int = DLINEAR_PATIENCE,
                  ) -> tuple[DLinear, int, float]:
    """DLinear trained on ``train`` with the published recipe; returns the best-validation
    model, the epochs run and the best validation MSE."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = DLinear(train.inputs.shape[1], horizon, train.inputs.shape[2])
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    best, best_state, stale, epochs = math.inf, copy.deepcopy(model.state_dict()), 0, 0
    for epoch in range(max_epochs):
        # lradj type1: epoch e (from 0) runs at lr * 0.5 ** max(0, e - 1)
        for group in optimizer.param_groups:
            group["lr"] = lr * 0.5 ** max(0, epoch - 1)
        model.train()
        order = rng.permutation(len(train))
        for i in range(0, len(order) - batch + 1, batch):  # the last partial batch dropped
            index = np.sort(order[i:i + batch])
            x = torch.from_numpy(train.inputs[index]).float()  # (B, L, C)
            y = torch.from_numpy(train.outputs[index]).float()  # (B, H, C)
            loss = torch.nn.functional.mse_loss(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        epochs += 1
        model.eval()
        val_mse = float(np.mean((forecast(model, val.inputs) - val.outputs) ** 2))
        if val_mse < best:
            best, best_state, stale = val_mse, copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
            if stale >= patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    return model, epochs, best


def run_dlinear(dm: ForecastDataModule, data: str, seed: int,
                max_epochs: int = DLINEAR_EPOCHS) -> dict[str, Any]:
    recipe = DLINEAR_RECIPE.get(data, DLINEAR_RECIPE["etth1"])
    start = time.perf_counter()
    model, epochs, best = train_dlinear(dm.split_windows("train"), dm.split_windows("val"),
                                        dm.horizon, recipe["lr"], recipe["batch"], seed,
                                        max_epochs=max_epochs)
    train_s = time.perf_counter() - start
    test = dm.split_windows("test")
    result = evaluate(forecast(model, test.inputs), test.outputs, protocol_windows(dm))
    return row("dlinear", data, dm.horizon, seed, result, train_s, epochs,
               f"lr {recipe['lr']}, batch {recipe['batch']}, best val MSE {best:.4f}")


def run_dir(runs: Path, variant: str, data: str, horizon: int, seed: int) -> Path:
    return runs / f"{variant}-{data}-H{horizon}-s{seed}"


def _epochs_run(run: Path) -> int | None:
    """Epochs of a train.py run, from its CSV log."""
    log = run / "csv" / "metrics.csv"
    if not log.is_file():
        return None
    with log.open() as f:
        epochs = [int(r["epoch"]) for r in csv.DictReader(f) if r.get("epoch")]
    return max(epochs) + 1 if epochs else None


def _rescore(checkpoint: str, dm: ForecastDataModule) -> dict[str, float]:
    """The checkpoint's test forecasts through the shared evaluator."""
    from nlp_lstm.drivers.registry import load_model

    model = load_model(checkpoint).cpu().eval()
    test = dm.split_windows("test")
    return evaluate(forecast(model, test.inputs, batch=256), test.outputs, protocol_windows(dm))


def run_ours(data: str, horizon: int, seed: int, runs: Path, variant: str = BASE_VARIANT,
             extra: Sequence[str] = (), dm: ForecastDataModule | None = None,
             python: str = sys.executable) -> dict[str, Any]:
    """Our model (``VARIANTS[variant]``) through train.py, or the finished run's results."""
    run = run_dir(runs, variant, data, horizon, seed)
    timing = run / "time.json"
    notes = []
    if not (run / "metrics.json").is_file():
        command = [python, "train.py", f"experiment={data}", f"data.horizon={horizon}",
                   f"seed={seed}", f"hydra.run.dir={run}", "trainer.enable_progress_bar=false",
                   *VARIANTS[variant], *extra]
        run.parent.mkdir(parents=True, exist_ok=True)
        print(f"[ours] {' '.join(command[1:])}", flush=True)
        start = time.perf_counter()
        with (run.parent / f"{run.name}.log").open("w") as log:
            subprocess.run(command, cwd=ROOT, check=True, stdout=log, stderr=subprocess.STDOUT)
        timing.write_text(json.dumps({"train_s": time.perf_counter() - start,
                                      "command": command[1:]}, indent=2) + "\n")
    else:
        notes.append("reused run")
    metrics = json.loads((run / "metrics.json").read_text())
    train_s = json.loads(timing.read_text())["train_s"] if timing.is_file() else None
    if train_s is None:
        notes.append("train time unknown (no time.json)")
    result = None
    checkpoint = metrics.get("checkpoint")
    if checkpoint and Path(checkpoint).is_file():
        try:
            result = _rescore(checkpoint, dm or datamodule(data, horizon))
            notes.append(f"metrics.json test/mse {metrics['test/mse']:.4f}")
        except Exception as e:  # the recorded numbers stand in; the note says why
            notes.append(f"not re-scored ({type(e).__name__}: {str(e).splitlines()[0][:120]})")
    if result is None:
        expected = protocol_windows(dm) if dm is not None else None
        result = {"mse": float(metrics["test/mse"]), "mae": float(metrics["test/mae"]),
                  "windows": expected}
        notes.append("scores from metrics.json")
    notes.append(f"val MSE {metrics.get('val/mse', float('nan')):.4f}")
    return row("ours", data, horizon, seed, result, train_s, _epochs_run(run),
               "; ".join(notes), variant)


def _peer_imports() -> tuple[Any, Any]:
    try:
        from darts import TimeSeries
        from darts.models import BlockRNNModel
    except ImportError as e:
        raise PeerMissingError(f"the peer needs darts ({e}); install the extra: {PEER_INSTALL}") \
            from None
    return TimeSeries, BlockRNNModel


def _standardised(dm: ForecastDataModule, split: str) -> np.ndarray:
    """A split's rows, its inputs included, standardised: (rows, C) float32."""
    start, end = split_rows(dm.series, split, dm.input_length)
    return dm.scaler.transform(dm.series.values[start:end]).astype(np.float32)


def run_peer(dm: ForecastDataModule, data: str, seed: int, epochs: int | None = None,
             work_dir: Path | None = None) -> dict[str, Any]:
    """darts BlockRNNModel (LSTM): darts' defaults, the protocol's chunks, fitted on the
    standardised training rows; every test origin forecast with the trained weights."""
    TimeSeries, BlockRNNModel = _peer_imports()
    epochs = epochs or PEER_EPOCHS.get(data, 20)
    with tempfile.TemporaryDirectory() as scratch:
        model = BlockRNNModel(
            input_chunk_length=dm.input_length, output_chunk_length=dm.horizon, model="LSTM",
            n_epochs=epochs, random_state=seed, work_dir=str(work_dir or scratch),
            save_checkpoints=False,
            pl_trainer_kwargs={"accelerator": "cpu", "enable_progress_bar": False,
                               "enable_model_summary": False, "logger": False,
                               "enable_checkpointing": False})
        start = time.perf_counter()
        model.fit(TimeSeries.from_values(_standardised(dm, "train")), verbose=False)
        train_s = time.perf_counter() - start
        test = _standardised(dm, "test")  # (rows, C): L rows of inputs, then the test rows
        predicted = model.historical_forecasts(
            TimeSeries.from_values(test), start=dm.input_length, forecast_horizon=dm.horizon,
            stride=1, retrain=False, last_points_only=False, overlap_end=False, verbose=False)
    forecasts = np.stack([p.values() for p in predicted])  # (N, H, C)
    targets = dm.split_windows("test").outputs  # (N, H, C)
    result = evaluate(forecasts, targets, protocol_windows(dm))
    return row("peer", data, dm.horizon, seed, result, train_s, epochs,
               f"darts BlockRNNModel LSTM, darts defaults (hidden 25, 1 layer, Adam 1e-3, "
               f"batch 32), {epochs} epochs instead of 100, no validation")


# ------------------------------------------------------------------------------- results
def merge_rows(old: Iterable[dict[str, Any]], new: Iterable[dict[str, Any]]
               ) -> list[dict[str, Any]]:
    """``old`` with ``new`` added; a new row replaces an old one of the same key."""
    merged = {tuple(r.get(k) for k in KEY): r for r in old}
    merged.update({tuple(r.get(k) for k in KEY): r for r in new})
    return sorted(merged.values(), key=lambda r: (r["data"], r["model"], r.get("variant") or "",
                                                   r["horizon"], r.get("seed") or 0))


def _mean_std(values: Sequence[float], digits: int = 3) -> str:
    if not values:
        return "–"
    mean = statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def _label(r: dict[str, Any]) -> str:
    if r["model"] == "ours":
        return f"ours ({r.get('variant') or BASE_VARIANT})"
    return {"peer": "darts BlockRNN LSTM (peer)", "dlinear": "DLinear (re-run here)",
            "repeat": "repeat last value"}.get(r["model"], r["model"])


def _groups(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str, int], list[dict[str, Any]]]:
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["data"], _label(r), r["horizon"]), []).append(r)
    return groups


def _mean_mse(groups: dict, data: str, label: str, horizon: int) -> float | None:
    rows = groups.get((data, label, horizon))
    return statistics.fmean(r["mse"] for r in rows) if rows else None


def markdown(rows: list[dict[str, Any]]) -> str:
    """FORECAST.md: the tables of every row, the published anchors, the ablations."""
    main = [r for r in rows if r["model"] != "ours" or (r.get("variant") or BASE_VARIANT)
            == BASE_VARIANT]
    groups = _groups(main)
    order = ["repeat last value", "DLinear (re-run here)", "darts BlockRNN LSTM (peer)",
             f"ours ({BASE_VARIANT})"]
    out = ["# Long-horizon forecasting: ETTh1 and ETTm1", "",
           "Written by `python -m benchmarks.forecast` from `forecast.json`. Multivariate (7 in, "
           "7 out), L = 336, test MSE / MAE on standardised values over **every** test window "
           "(the windows row), all models scored by one evaluator; mean ± sample std over the "
           "seeds (n). Train time: wall seconds per run on one CPU thread (ours: the whole "
           "train.py subprocess, its test included).", ""]
    for data in sorted({r["data"] for r in main}):
        horizons = sorted({r["horizon"] for r in main if r["data"] == data})
        labels = [lb for lb in order if any(k[0] == data and k[1] == lb for k in groups)]
        labels += sorted({k[1] for k in groups if k[0] == data} - set(labels))
        out += [f"## {data.upper()}", "", "| model | " + " | ".join(
            f"H={h} MSE / MAE" for h in horizons) + " |", "|---" * (len(horizons) + 1) + "|"]
        for label in labels:
            cells = []
            for h in horizons:
                rs = groups.get((data, label, h), [])
                cells.append(f"{_mean_std([r['mse'] for r in rs])} / "
                             f"{_mean_std([r['mae'] for r in rs])} (n={len(rs)})" if rs else "–")
            out.append(f"| {label} | " + " | ".join(cells) + " |")
        windows = {h: {r["windows"] for r in main if r["data"] == data and r["horizon"] == h}
                   for h in horizons}
        out.append("| windows | " + " | ".join(
            "/".join(str(w) for w in sorted(windows[h], key=str)) for h in horizons) + " |")
        out += ["", "| train time (s) / epochs | " + " | ".join(f"H={h}" for h in horizons)
                + " |", "|---" * (len(horizons) + 1) + "|"]
        for label in labels:
            cells = []
            for h in horizons:
                rs = [r for r in groups.get((data, label, h), []) if r["train_s"] is not None]
                epochs = sorted({r["epochs"] for r in groups.get((data, label, h), [])
                                 if r["epochs"] is not None})
                span = (f"{epochs[0]}" if len(epochs) == 1 else
                        f"{epochs[0]}-{epochs[-1]}" if epochs else "?")
                cells.append(f"{statistics.fmean(r['train_s'] for r in rs):.0f} / {span}"
                             if rs else "–")
            out.append(f"| {label} | " + " | ".join(cells) + " |")
        out.append("")
    out += _summary(groups)
    out += ["## Published anchors (not measured here)", "",
            "Test MSE as published at L = 336. Caveat: the published DLinear and PatchTST "
            "code dropped the last incomplete test batch (`drop_last=True`), so their numbers "
            "leave out the last windows; ours score every window (`series.scores(..., "
            "compat_drop_last=B)` reproduces theirs).", ""]
    for data in ("etth1", "ettm1"):
        out += [f"| {data.upper()} | " + " | ".join(f"H={h}" for h in HORIZONS) + " |",
                "|---" * (len(HORIZONS) + 1) + "|"]
        for name, table in PUBLISHED.items():
            out.append(f"| {name} | " + " | ".join(
                f"{mse:.3f}" for mse in table[data]) + " |")
        out.append("")
    out += ablation_markdown(rows)
    notes = sorted({f"{_label(r)}: {r['notes']}" for r in rows
                    if r["notes"] and r["model"] in ("peer", "dlinear")
                    and "best val" not in r["notes"]})
    out += ["## Settings", "",
            f"- DLinear: kernel 25, shared linear maps; Adam, MSE, lr "
            f"{DLINEAR_RECIPE['etth1']['lr']} / {DLINEAR_RECIPE['ettm1']['lr']} and batch "
            f"{DLINEAR_RECIPE['etth1']['batch']} / {DLINEAR_RECIPE['ettm1']['batch']} "
            "(ETTh1 / ETTm1, the paper's scripts), up to 10 epochs, lr halved every epoch after "
            "the first, early stopping patience 3 on validation MSE, best validation weights.",
            *(f"- {n}" for n in notes), ""]
    return "\n".join(out)


def _summary(groups: dict) -> list[str]:
    """Ours against DLinear (points won) and against the peer (mean MSE difference)."""
    ours = f"ours ({BASE_VARIANT})"
    lines = []
    for other, name in (("DLinear (re-run here)", "DLinear"),
                        ("darts BlockRNN LSTM (peer)", "the darts LSTM")):
        points = sorted({(d, h) for d, lb, h in groups if lb == ours}
                        & {(d, h) for d, lb, h in groups if lb == other})
        if not points:
            continue
        wins, gaps = 0, []
        for d, h in points:
            a, b = _mean_mse(groups, d, ours, h), _mean_mse(groups, d, other, h)
            wins += a < b
            gaps.append(100 * (b - a) / b)
        lines.append(f"- Ours beats {name} on mean test MSE at {wins} of {len(points)} points; "
                     f"our MSE is {statistics.fmean(gaps):.1f}% lower on average (per point, "
                     f"from {min(gaps):+.1f}% to {max(gaps):+.1f}%; + is lower).")
    return ["## Summary", "", *lines, ""] if lines else []


def ablation_markdown(rows: list[dict[str, Any]]) -> list[str]:
    """Each variant's test MSE against ``segment-lstm``'s, paired by seed."""
    ours = [r for r in rows if r["model"] == "ours" and r["data"] == ABLATION_DATA
            and r["horizon"] in ABLATION_HORIZONS]
    variants = sorted({r.get("variant") or BASE_VARIANT for r in ours} - {BASE_VARIANT})
    if not variants:
        return []
    out = [f"## Ablations ({ABLATION_DATA.upper()}, test MSE; Δ = variant − {BASE_VARIANT}, "
           "paired by seed, mean ± std)", "",
           "| variant | " + " | ".join(f"H={h} MSE | Δ H={h}" for h in ABLATION_HORIZONS)
           + " |", "|---" * (2 * len(ABLATION_HORIZONS) + 1) + "|"]
    for variant in [BASE_VARIANT, *variants]:
        cells = []
        for h in ABLATION_HORIZONS:
            mine = {r["seed"]: r["mse"] for r in ours
                    if (r.get("variant") or BASE_VARIANT) == variant and r["horizon"] == h}
            base = {r["seed"]: r["mse"] for r in ours
                    if (r.get("variant") or BASE_VARIANT) == BASE_VARIANT and r["horizon"] == h}
            deltas = [mine[s] - base[s] for s in sorted(mine.keys() & base.keys())]
            cells += [f"{_mean_std(list(mine.values()), 4)} (n={len(mine)})",
                      f"{_mean_std(deltas, 4)}" if variant != BASE_VARIANT and deltas else "–"]
        out.append(f"| {variant} | " + " | ".join(cells) + " |")
    return [*out, ""]


def write_results(rows: list[dict[str, Any]], out: Path) -> tuple[Path, Path]:
    """Merges ``rows`` into ``out/forecast.json`` and rewrites ``out/FORECAST.md``."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "forecast.json"
    old = json.loads(path.read_text())["rows"] if path.is_file() else []
    merged = merge_rows(old, rows)
    path.write_text(json.dumps({"protocol": {"input_length": INPUT_LENGTH, "features": "M",
                                             "scored": "every test window, standardised"},
                                "rows": merged}, indent=1) + "\n")
    table = out / "FORECAST.md"
    table.write_text(markdown(merged))
    return path, table


# ---------------------------------------------------------------------------------- main
def _experiment_epochs(data: str) -> int | None:
    from omegaconf import OmegaConf

    path = ROOT / "conf" / "experiment" / f"{data}.yaml"
    return OmegaConf.load(path).get("trainer", {}).get("max_epochs") if path.is_file() else None


def quick(args: argparse.Namespace) -> None:
    """One epoch per trained model on the first data set and horizon; projected full times."""
    data, horizon, seed = args.data[0], args.horizons[0], args.seeds[0]
    points = len(args.data) * len(args.horizons)
    dm = datamodule(data, horizon)
    for model in args.models:
        start = time.perf_counter()
        if model == "repeat":
            run_repeat(dm, data)
            full_epochs = 0
        elif model == "dlinear":
            run_dlinear(dm, data, seed, max_epochs=1)
            full_epochs = DLINEAR_EPOCHS
        elif model == "peer":
            try:
                run_peer(dm, data, seed, epochs=1)
            except PeerMissingError as e:
                print(f"[quick] peer: {e}")
                continue
            full_epochs = PEER_EPOCHS.get(data, 20)
        else:
            with tempfile.TemporaryDirectory() as runs:
                run_ours(data, horizon, seed, Path(runs), extra=["trainer.max_epochs=1"], dm=dm)
            full_epochs = _experiment_epochs(data) or 1
        epoch = time.perf_counter() - start
        print(f"[quick] {model} {data} H={horizon}: one epoch {epoch:.0f} s; full run ≈ "
              f"{epoch * max(full_epochs, 1):.0f} s per point, ≈ "
              f"{epoch * max(full_epochs, 1) * points * len(args.seeds) / 60:.0f} min for "
              f"{points} points x {len(args.seeds)} seeds (longer horizons and ETTm1 cost more)",
              flush=True)


def _done(out: Path) -> set[tuple[str, str, int, int | None]]:
    """(model, data, horizon, seed) of the rows already measured, ours excepted (its run
    directories are its memory)."""
    path = out / "forecast.json"
    rows = json.loads(path.read_text())["rows"] if path.is_file() else []
    return {(r["model"], r["data"], r["horizon"], r["seed"]) for r in rows if r["model"] != "ours"}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", choices=sorted(DATA), default=["etth1", "ettm1"])
    parser.add_argument("--horizons", nargs="+", type=int, default=list(HORIZONS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS),
                        default=[BASE_VARIANT], help="our variants to run (--models ours)")
    parser.add_argument("--runs", type=Path, default=Path("outputs/forecast_bench"),
                        help="our runs' directories (reused when finished)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--quick", action="store_true",
                        help="time one epoch of each model on the first point, then stop")
    parser.add_argument("--ablations", action="store_true",
                        help=f"every variant of VARIANTS on {ABLATION_DATA}, H "
                             f"{'/'.join(map(str, ABLATION_HORIZONS))}, --seeds")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in this process")
    parser.add_argument("--redo", action="store_true",
                        help="re-run repeat/dlinear/peer rows already in OUT/forecast.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))  # the train.py subprocesses
    if args.quick:
        quick(args)
        return
    if args.ablations:
        args.data, args.horizons, args.models = [ABLATION_DATA], list(ABLATION_HORIZONS), ["ours"]
        args.variants = list(VARIANTS)
    runs = args.runs if args.runs.is_absolute() else ROOT / args.runs
    done = set() if args.redo else _done(args.out)
    peer_ok = True
    for data in args.data:
        for horizon in args.horizons:
            dm = datamodule(data, horizon)
            for model in args.models:
                if model == "repeat":
                    jobs = [lambda dm=dm, data=data: run_repeat(dm, data)] \
                        if ("repeat", data, horizon, None) not in done else []
                elif model == "dlinear":
                    jobs = [lambda dm=dm, data=data, s=s: run_dlinear(dm, data, s)
                            for s in args.seeds if ("dlinear", data, horizon, s) not in done]
                elif model == "peer":
                    if not peer_ok:
                        continue
                    jobs = [lambda dm=dm, data=data, s=s: run_peer(dm, data, s)
                            for s in args.seeds if ("peer", data, horizon, s) not in done]
                else:
                    jobs = [lambda dm=dm, data=data, h=horizon, s=s, v=v:
                            run_ours(data, h, s, runs, v, dm=dm)
                            for v in args.variants for s in args.seeds]
                for job in jobs:
                    try:
                        result = job()
                    except PeerMissingError as e:
                        print(f"[peer] skipped: {e}", flush=True)
                        peer_ok = False
                        break
                    write_results([result], args.out)  # each row saved as soon as it exists
                    print(f"[{result['model']}] {data} H={horizon} seed={result['seed']}: "
                          f"MSE {result['mse']:.4f} MAE {result['mae']:.4f} "
                          f"({result['windows']} windows, {result['train_s']} s)", flush=True)
    print(f"results: {args.out / 'forecast.json'}, {args.out / 'FORECAST.md'}")


if __name__ == "__main__":
    main()
