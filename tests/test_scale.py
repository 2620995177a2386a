"""Training at scale, on CPU: DDP with two processes, mixed precision, exact resumption, the NaN
guard, sweeps (basic and Optuna), reproducibility, plots, and every experiment smoke-tested."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import ROOT, TINY, compose_train
from omegaconf import OmegaConf

from nlp_lstm.core.cli import CONFIG_DIR
from nlp_lstm.drivers.registry import load_model
from nlp_lstm.drivers.train import train
from nlp_lstm.sentiment.distill import needs_teacher
from nlp_lstm.training.callbacks import DivergenceError

QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
SMALL = ["data.source.num_examples=300", "data.loader.batch_size=32", "model.embedding_dim=16",
         "model.encoder.hidden_size=16", "trainer.max_epochs=1", *QUIET]


def run_train(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "NLP_LSTM_DEBUG": ""})


def val_curve(run: Path) -> list[tuple[int, float]]:
    import csv

    with (run / "csv" / "metrics.csv").open() as f:
        return [(int(r["epoch"]), float(r["val/loss"])) for r in csv.DictReader(f)
                if r.get("val/loss")]


def test_ddp_cpu_two_processes_one_set_of_outputs(tmp_path):
    run = tmp_path / "run"
    proc = run_train("trainer=ddp_cpu", *SMALL, "debug=limit", f"hydra.run.dir={run}",
                     "callbacks.throughput.warmup_steps=1",
                     f"paths.cache_dir={tmp_path}/cache")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "distributed_backend=gloo" in proc.stderr + proc.stdout
    # One set of outputs; only the logs are per rank (Hydra names rank 1's job log).
    assert sorted(p.name for p in run.iterdir()) == [
        ".hydra", "checkpoints", "config.yaml", "csv", "curve.csv", "metrics.json",
        "throughput.json", "train.log", "train_ddp_process_1.log"]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert [p.name for p in (run / "csv").iterdir()] == ["metrics.csv"]
    assert json.loads((run / "throughput.json").read_text())["world_size"] == 2
    assert list(tmp_path.iterdir()) == [run]  # nothing written elsewhere


def test_ddp_validation_equals_single_process(checkpoint, tmp_path):
    """Sharded evaluation counts each example once: metrics equal one process's exactly."""
    script = tmp_path / "validate.py"
    script.write_text(textwrap.dedent(f"""
        import json, sys
        import pytorch_lightning as pl
        from hydra.utils import instantiate
        sys.path.insert(0, {str(ROOT / "tests")!r})
        from conftest import TINY, compose_train
        from nlp_lstm.drivers.registry import load_model
        model = load_model({str(checkpoint)!r}, task="sentiment")
        cfg = compose_train({str(tmp_path)!r}, TINY)
        dm = instantiate(cfg.data, trained_tokenizer=model.tokenizer.to_json(),
                         loader={{"batch_size": 7}})
        devices = int(sys.argv[1])
        trainer = pl.Trainer(accelerator="cpu", devices=devices,
                             strategy="ddp" if devices > 1 else "auto", logger=False,
                             enable_progress_bar=False, use_distributed_sampler=False)
        metrics = trainer.validate(model, datamodule=dm, verbose=False)[0]
        if trainer.is_global_zero:
            print("METRICS " + json.dumps(metrics))
    """))
    results = []
    for devices in ("1", "2"):
        proc = subprocess.run([sys.executable, str(script), devices], cwd=ROOT, timeout=300,
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
        line = next(x for x in proc.stdout.splitlines() if x.startswith("METRICS "))
        results.append(json.loads(line.removeprefix("METRICS ")))
    single, ddp = results
    assert single.keys() == ddp.keys() == {"val/loss", "val/acc", "val/f1"}
    for key in single:
        assert ddp[key] == pytest.approx(single[key], abs=1e-6), key


def test_bf16_mixed_precision_on_cpu(tmp_path):
    metrics = train(compose_train(tmp_path, [*TINY, "trainer.precision=bf16-mixed",
                                             "debug=limit"]))
    assert metrics is not None and 0.0 <= metrics <= 1.0
    assert json.loads((tmp_path / "metrics.json").read_text())["val/loss"] > 0


def test_interrupted_and_resumed_run_matches_uninterrupted(tmp_path):
    common = [*TINY, "trainer.max_epochs=3", "trainer.deterministic=true"]
    train(compose_train(tmp_path / "full", common))
    # Stop after the first epoch, as a crash at an epoch boundary would.
    stop = ["+callbacks.stop._target_=pytorch_lightning.callbacks.EarlyStopping",
            "+callbacks.stop.monitor=val/acc", "+callbacks.stop.mode=max",
            "+callbacks.stop.stopping_threshold=0.0"]
    train(compose_train(tmp_path / "part", [*common, *stop]))
    assert [e for e, _ in val_curve(tmp_path / "part")] == [0]
    last = tmp_path / "part" / "checkpoints" / "last.ckpt"
    train(compose_train(tmp_path / "resumed", [*common, f"ckpt_path={last}"]))
    full, resumed = val_curve(tmp_path / "full"), val_curve(tmp_path / "resumed")
    assert [e for e, _ in resumed] == [1, 2]
    assert resumed == full[1:]  # bit for bit: weights, optimizer, schedule, batches, dropout


def test_same_seed_same_metrics(tmp_path):
    common = [*TINY, "trainer.deterministic=true", "debug=limit"]
    a = train(compose_train(tmp_path / "a", common))
    b = train(compose_train(tmp_path / "b", common))
    assert a == b
    assert val_curve(tmp_path / "a") == val_curve(tmp_path / "b")


def test_nan_guard_stops_with_message_and_loadable_checkpoint(tmp_path):
    with pytest.raises(DivergenceError, match=r"at step \d+ \(epoch 0\).*last-good\.ckpt"):
        train(compose_train(tmp_path, [*TINY, "model.optimizer.lr=1e30"]))
    model = load_model(tmp_path / "checkpoints" / "last-good.ckpt", task="sentiment")
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_nan_guard_from_the_command_line_exits_1(tmp_path):
    proc = run_train(*SMALL, "model.optimizer.lr=1e30", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 1
    assert "error: the loss became nan" in proc.stderr or "non-finite" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_multirun_sweep(tmp_path):
    proc = run_train("-m", *SMALL, "model.pooling=max,mean", f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for job in ("0", "1"):
        assert "val/acc" in json.loads((tmp_path / job / "metrics.json").read_text())
    swept = {o for j in ("0", "1")
             for o in OmegaConf.load(tmp_path / j / ".hydra" / "overrides.yaml")
             if o.startswith("model.pooling=")}
    assert swept == {"model.pooling=max", "model.pooling=mean"}


def test_optuna_search_three_trials(tmp_path):
    proc = run_train("hparams_search=sst2_optuna", "data=sentiment_synthetic",
                     "hydra.sweeper.n_trials=3", *SMALL, f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Best value:" in proc.stdout + proc.stderr
    results = (tmp_path / "optimization_results.yaml").read_text()
    assert "best_value:" in results and "best_params:" in results
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["0", "1", "2"]


def _experiments() -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("name", _experiments())
def test_every_experiment_runs_with_debug_fdr(name, tmp_path):
    cfg = compose_train(tmp_path, [f"experiment={name}", "debug=fdr", *QUIET,
                                   f"paths.cache_dir={tmp_path}/cache"])
    # The user's own inputs (files, a teacher checkpoint): tests/test_distill.py runs these
    # experiments with stand-ins.
    missing = sorted(OmegaConf.missing_keys(cfg))
    if "teacher_ckpt" in cfg.model and (
        OmegaConf.is_missing(cfg.model, "teacher_ckpt")
        or (cfg.model.teacher_ckpt is None  # fine where the teacher is never read
            and needs_teacher(cfg.model.alpha, cfg.model.init_embedding))):
        missing.append("model.teacher_ckpt")
    if missing:
        pytest.skip(f"needs the user's {missing}")
    real = str(cfg.data.source._target_).rsplit(".", 1)[-1]
    shared = ("SST2", "Multi30k", "TinyShakespeare", "SeriesFile", "IMDB", "IMDBReviews")
    if real in shared and not os.environ.get("NLP_LSTM_DATA"):
        pytest.skip(f"needs {real} under $NLP_LSTM_DATA")
    if cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available():
        pytest.skip("a GPU preset: composes here, runs on a GPU")
    assert train(cfg) is None


def test_plot_writes_a_png(trained_run):
    out = trained_run / "plot.png"
    proc = subprocess.run([sys.executable, "-m", "tasks.plot", str(trained_run), "--out",
                           str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


def test_plot_bad_run_dir_exits_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "tasks.plot", str(tmp_path / "nope")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "run directory not found" in proc.stderr
