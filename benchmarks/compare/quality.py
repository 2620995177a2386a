"""Section 4: quality at equal wall time on real data, through the project's own training command.

For each data set, three runs of ``python train.py experiment=<exp> encoder=<kind>`` with the
same ``trainer.max_time`` (each run's training, validation included, stops at the budget; the
learning-rate schedule is the experiment's, over its ``max_epochs``, so a run the budget cuts
short ends before its schedule does: the steps and epochs each run reached are reported).

Equal parameters: the LSTM keeps the experiment's encoder; the GRU width and the Transformer
width (``--transformer-layers`` layers, the project's Transformer configs have 2) are solved
so that the network's parameters without the token embedding (which every model shares) match
the LSTM's: ``LSTMClassifierNet`` for SST-2, ``LanguageModelNet`` (no window attention, as
the Transformer has none) for Tiny Shakespeare. The metric is that of the best checkpoint, from
the run's ``metrics.json``: SST-2 dev accuracy (the dev set also picks the checkpoint), Tiny
Shakespeare validation bits per character.

With ``--quick`` the embedded corpora stand in (sentiment grammar, generated stories) at tiny
widths and budgets: that checks the machinery, not the question.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from benchmarks.compare.params import KINDS, params_without, solve_width
from nlp_lstm.core.cli import compose_config
from nlp_lstm.generation.net import LanguageModelNet
from nlp_lstm.sentiment.net import LSTMClassifierNet

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Dataset:
    name: str  # the report's name
    overrides: list[str]  # what picks the data and the model (experiment=..., sizes)
    task: str  # sentiment | generation
    metric: str  # key of metrics.json
    higher_is_better: bool
    files: list[str] = field(default_factory=list)  # under the data root; [] = embedded
    margin: float = 0.0  # differences within it are not a win (see report.py)


def real_datasets() -> list[Dataset]:
    return [
        Dataset("SST-2", ["experiment=sst2"], "sentiment", "val/acc", True,
                ["sst2/train.tsv", "sst2/dev.tsv"], margin=2 * (0.25 / 872) ** 0.5),
        Dataset("Tiny Shakespeare", ["experiment=shakespeare_char"], "generation", "val/bpc",
                False, ["tinyshakespeare/input.txt"], margin=0.02),
    ]


def embedded_datasets() -> list[Dataset]:
    """Stand-ins for ``--quick``: tiny models on the embedded corpora."""
    return [
        Dataset("embedded sentiment corpus (stand-in for SST-2)",
                ["task=sentiment", "data.source.num_examples=2000", "model.embedding_dim=32",
                 "model.encoder.hidden_size=32", "trainer.max_epochs=50"],
                "sentiment", "val/acc", True, margin=2 * (0.25 / 200) ** 0.5),
        Dataset("embedded stories (stand-in for Tiny Shakespeare)",
                ["task=generation", "data.source.num_documents=200", "model.attention=none",
                 "model.embedding_dim=32", "model.encoder.hidden_size=64",
                 "trainer.max_epochs=50"],
                "generation", "val/bpc", False, margin=0.02),
    ]


def missing_files(dataset: Dataset, root: str | None) -> list[str]:
    if not dataset.files:
        return []
    if not root:
        return [f"$NLP_LSTM_DATA/{f}" for f in dataset.files]
    return [str(Path(root) / f) for f in dataset.files if not (Path(root) / f).is_file()]


def _encoder_config(dataset: Dataset, kind: str) -> tuple[dict[str, Any], Any]:
    """The composed model's encoder mapping for ``encoder=<kind>``, and the model node."""
    cfg = compose_config("train", [*dataset.overrides, f"encoder={kind}"])
    encoder = OmegaConf.to_container(cfg.model.encoder, resolve=True)
    return encoder, cfg.model


def _params(dataset: Dataset, model_cfg: Any, encoder: dict[str, Any]) -> int:
    """The network's parameters without the token embedding (vocabulary of 8 stand-in ids:
    only the embedding and the output bias depend on it)."""
    if dataset.task == "sentiment":
        net = LSTMClassifierNet(8, 2, 0, int(model_cfg.embedding_dim), encoder,
                                str(model_cfg.pooling), 0.0)
    else:
        encoder = dict(encoder)
        if encoder.get("kind") != "transformer":
            encoder.pop("dropout", None)
        net = LanguageModelNet(8, embedding_dim=int(model_cfg.embedding_dim), encoder=encoder,
                               tie_embeddings=bool(model_cfg.tie_embeddings))
    return params_without(net, {"embedding": net.embedding.weight})


def plan(dataset: Dataset, transformer_layers: int) -> dict[str, dict[str, Any]]:
    """Per kind: the encoder overrides that give equal parameters, and the count."""
    reference, model_cfg = _encoder_config(dataset, "lstm")
    target = _params(dataset, model_cfg, reference)
    runs: dict[str, dict[str, Any]] = {
        "lstm": {"width": reference["hidden_size"], "params": target,
                 "layers": reference.get("num_layers", 1), "overrides": []}}
    for kind in ("gru", "transformer"):
        encoder, _ = _encoder_config(dataset, kind)
        extra = []
        if kind == "transformer":
            encoder["num_layers"] = transformer_layers
            extra.append(f"model.encoder.num_layers={transformer_layers}")
            if dataset.task == "generation":
                extra.append("model.dropout_hidden=0.0")  # the LSTM's; refused by the Transformer
        step = int(encoder.get("nhead", 1))

        def params_at(w: int, encoder: dict[str, Any] = encoder) -> int:
            return _params(dataset, model_cfg, {**encoder, "hidden_size": w})

        width = solve_width(params_at, target, step)
        runs[kind] = {"width": width, "params": params_at(width),
                      "layers": encoder.get("num_layers", 1),
                      "overrides": [f"model.encoder.hidden_size={width}", *extra]}
    return runs


def _last_progress(run_dir: Path) -> dict[str, int]:
    """The last step and epoch the CSV logger recorded (it logs every few steps)."""
    path = run_dir / "csv" / "metrics.csv"
    if not path.is_file():
        return {}
    step = epoch = 0
    with path.open() as f:
        for row in csv.DictReader(f):
            if row.get("step"):
                step = max(step, int(float(row["step"])))
            if row.get("epoch"):
                epoch = max(epoch, int(float(row["epoch"])))
    return {"steps": step, "epochs": epoch + 1}


def budget_string(seconds: int) -> str:
    """trainer.max_time's DD:HH:MM:SS."""
    return (f"{seconds // 86400:02d}:{seconds % 86400 // 3600:02d}:"
            f"{seconds % 3600 // 60:02d}:{seconds % 60:02d}")


def run(dataset: Dataset, kind: str, setting: dict[str, Any], budget_s: int, runs_dir: Path,
        device: str) -> dict[str, Any]:
    run_dir = runs_dir / f"{dataset.task}-{kind}"
    command = [sys.executable, "train.py", *dataset.overrides, f"encoder={kind}",
               *setting["overrides"], f"trainer.max_time={budget_string(budget_s)}",
               f"trainer.accelerator={'gpu' if device == 'cuda' else 'cpu'}",
               "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
               "test=false", f"hydra.run.dir={run_dir}"]
    run_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with (run_dir / "train.log").open("w") as log:
        code = subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                              env=os.environ.copy(), check=False).returncode
    seconds = time.perf_counter() - start
    row: dict[str, Any] = {"kind": kind, "width": setting["width"], "params": setting["params"],
                           "layers": setting["layers"], "wall_s": seconds,
                           "command": " ".join(command[1:])}
    metrics_path = run_dir / "metrics.json"
    if code != 0 or not metrics_path.is_file():
        tail = (run_dir / "train.log").read_text().strip().splitlines()[-3:]
        row["error"] = f"exit code {code}: " + " / ".join(tail)
        return row
    metrics = json.loads(metrics_path.read_text())
    row["value"] = metrics.get(dataset.metric)
    row.update(_last_progress(run_dir))
    throughput = run_dir / "throughput.json"
    if throughput.is_file():  # exact steps: the callback counts every batch after its warm-up
        summary = json.loads(throughput.read_text())
        row["tokens_per_s"] = summary.get("tokens_per_second")
        warmup = OmegaConf.load(run_dir / "config.yaml").callbacks.throughput.warmup_steps
        row["steps"] = summary["measured_steps"] + int(warmup)
    return row


def measure(datasets: list[Dataset], budget_s: dict[str, int], transformer_layers: int,
            runs_dir: Path, device: str, data_root: str | None,
            log: Callable[[str], None] = print) -> dict[str, Any]:
    out = []
    for dataset in datasets:
        missing = missing_files(dataset, data_root)
        entry: dict[str, Any] = {"name": dataset.name, "metric": dataset.metric,
                                 "higher_is_better": dataset.higher_is_better,
                                 "margin": dataset.margin, "budget_s": budget_s[dataset.task]}
        if missing:
            entry["skipped"] = ("NLP_LSTM_DATA is not set" if not data_root
                                else "missing " + ", ".join(missing))
            log(f"  quality: {dataset.name} skipped: {entry['skipped']}")
            out.append(entry)
            continue
        settings = plan(dataset, transformer_layers)
        entry["rows"] = []
        for kind in KINDS:
            row = run(dataset, kind, settings[kind], budget_s[dataset.task], runs_dir, device)
            log(f"  quality: {dataset.name} {kind}: {row.get('value', row.get('error'))} "
                f"({row['wall_s']:.0f} s)")
            entry["rows"].append(row)
        out.append(entry)
    return {"datasets": out, "transformer_layers": transformer_layers}
