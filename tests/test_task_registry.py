"""The task is the unit of extension: two toy tasks defined here, in the test file alone, one of
text and one of numbers (a forecaster of noisy sine waves: float inputs (B, T, F), a fitted
scaler instead of a tokenizer), train, evaluate, predict, export to ONNX, run in the torch-free
runtime and are served over HTTP through the generic code, with no change to the package."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import compose_train, serving
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn
from torchmetrics import MeanSquaredError
from torchmetrics.classification import MulticlassAccuracy

from nlp_lstm.commands.export import export
from nlp_lstm.commands.predict import main as predict_main
from nlp_lstm.commands.serve import OnnxBackend
from nlp_lstm.core.cli import compose_config
from nlp_lstm.core.task import Task
from nlp_lstm.data import DataModule, TextDataModule, Tokenizer
from nlp_lstm.data.base import ToFit
from nlp_lstm.data.batching import pad_sequences
from nlp_lstm.deploy import runtime
from nlp_lstm.deploy.export import Export, Graph
from nlp_lstm.deploy.serve.endpoint import Call, Endpoint, ServeSettings, text_length
from nlp_lstm.deploy.serve.validation import check_fields, invalid, texts_field
from nlp_lstm.drivers.evaluate import evaluate
from nlp_lstm.drivers.registry import TASKS, load_export, load_model
from nlp_lstm.drivers.train import train
from nlp_lstm.nn import build_encoder, lengths_to_mask
from nlp_lstm.training.checkpoint import CheckpointError
from nlp_lstm.training.module import TaskModule

WORDS = ("red", "green", "blue", "gray")


# ------------------------------------------------------------------ the toy task
class FirstWordSource:
    """Sentences of 2-6 colour words; the label is the index of the first word."""

    splits = ("train", "val", "test")

    def __init__(self, num_examples: int = 300) -> None:
        self.num_examples = num_examples

    def prepare(self, root: Path) -> None:
        pass

    def fingerprint(self, root: Path) -> str:
        return f"first-word-{self.num_examples}"

    def load(self, split: str, root: Path, on_error: str = "raise") -> tuple[list, int]:
        rng = random.Random(self.splits.index(split))
        texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 6)))
                 for _ in range(self.num_examples)]
        return [(t, WORDS.index(t.split()[0])) for t in texts], 0


class FirstWordData(TextDataModule):
    task = "first_word"

    def tokenizer_texts(self) -> Iterable[str]:
        return [text for text, _ in self._examples("train")]

    def dataloader(self, split: str, *, shuffle: bool = False) -> Any:
        pairs = [(self.tokenizer.encode(t), y) for t, y in self._examples(split)]

        def collate(batch: Sequence[tuple[list[int], int]]) -> dict[str, torch.Tensor]:
            tokens, lengths = pad_sequences([ids for ids, _ in batch], self.tokenizer.pad_id)
            return {"tokens": tokens, "lengths": lengths,
                    "labels": torch.tensor([y for _, y in batch])}

        return self.loader(pairs, collate,
                           self.batch_sampler([len(ids) for ids, _ in pairs], shuffle=shuffle))


class FirstWordNet(nn.Module):
    def __init__(self, vocab_size: int, encoder: dict) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, 16)
        self.encoder = build_encoder(16, encoder)
        self.head = nn.Linear(self.encoder.output_size, len(WORDS))

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.encoder(self.embedding(tokens), lengths)  # (B, T, D*H)
        mask = lengths_to_mask(lengths, tokens.size(1)).unsqueeze(2)  # (B, T, 1)
        return self.head((outputs * mask).sum(1))  # (B, C)


class FirstWordModule(TaskModule):
    task, max_length = "first_word", 64

    def __init__(self, tokenizer: str, encoder: dict, optimizer: Any = None,
                 scheduler: Any = None) -> None:
        super().__init__(optimizer, scheduler)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"], logger=False)
        from nlp_lstm.data import Tokenizer

        self.tokenizer = Tokenizer.from_json(tokenizer)
        self.net = FirstWordNet(self.tokenizer.vocab_size, encoder)
        self.acc = nn.ModuleDict({s: MulticlassAccuracy(len(WORDS)) for s in ("val", "test")})
        self.seen = 0

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.net(tokens, lengths)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return F.cross_entropy(self(batch["tokens"], batch["lengths"]), batch["labels"])

    def _evaluate(self, batch: dict[str, torch.Tensor], stage: str) -> None:
        self.acc[stage].update(self(batch["tokens"], batch["lengths"]), batch["labels"])
        self.log(f"{stage}/acc", self.acc[stage], batch_size=len(batch["labels"]))
        self.seen += len(batch["labels"])

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def on_test_epoch_start(self) -> None:
        self.seen = 0

    def on_test_epoch_end(self) -> None:
        self.results["examples_seen"] = self.seen

    @torch.no_grad()
    def predict(self, texts: Sequence[str]) -> tuple[list[dict[str, Any]], int]:
        tokens, lengths = pad_sequences([self.tokenizer.encode(t) for t in texts],
                                        self.tokenizer.pad_id)
        first = self(tokens, lengths).argmax(-1).tolist()
        return [{"text": t, "first": WORDS[i]} for t, i in zip(texts, first, strict=True)], 0


class OnnxFirstWord:
    """The text toy task's torch-free runtime class: ``predict`` as ``FirstWordModule``'s."""

    task = "first_word"

    def __init__(self, export: Any) -> None:
        self.export, self.max_length = export, export.max_length
        self.tokenizer = Tokenizer.from_json(export.fitted["tokenizer"])

    def predict(self, texts: Sequence[str]) -> tuple[list[dict[str, Any]], int]:
        tokens, lengths = runtime.pad([self.tokenizer.encode(t) for t in texts],
                                      self.tokenizer.pad_id)
        logits = self.export.run("model", {"tokens": tokens, "lengths": lengths})["logits"]
        return [{"text": t, "first": WORDS[int(row.argmax())]}
                for t, row in zip(texts, logits, strict=True)], 0


def export_first_word(model: FirstWordModule) -> Export:
    tokens, lengths = torch.tensor([[4, 5, 6], [7, 4, 0]]), torch.tensor([3, 2])
    graph = Graph("model", model.net, (tokens, lengths), ["tokens", "lengths"], ["logits"],
                  {"tokens": {0: "B", 1: "T"}, "lengths": {0: "B"}, "logits": {0: "B"}})
    return Export([graph], {"tokenizer": model.tokenizer}, {})


def parse_texts(data: Mapping[str, Any], settings: ServeSettings) -> Call:
    check_fields(data, {"texts"}, {"texts"})
    return Call(texts_field(data, settings.max_queue))


TOY = Task(
    name="first_word",
    datamodule=FirstWordData,
    models=(FirstWordModule,),
    model_inputs=lambda dm: {"tokenizer": dm.tokenizer.to_json()},
    prepare_eval=lambda cfg, model: instantiate(cfg.data,
                                                trained_tokenizer=model.tokenizer.to_json()),
    export=export_first_word,
    runtime=OnnxFirstWord,
    endpoint=Endpoint("/first", parse=parse_texts, length=text_length,
                      run=lambda model, texts, key: model.predict(texts)[0]),
)


# ------------------------------------------------------- the numeric toy task: noisy sine waves
class Scaler:
    """Per-feature standardisation fitted on the training windows: the task's fitted state."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean, self.std = np.asarray(mean, np.float32), np.asarray(std, np.float32)

    def to_json(self) -> str:
        return json.dumps({"mean": self.mean.tolist(), "std": self.std.tolist()})

    @classmethod
    def from_json(cls, text: str) -> Scaler:
        return cls(**json.loads(text))

    def __call__(self, x: Any) -> np.ndarray:
        return ((np.asarray(x, np.float32) - self.mean) / self.std).astype(np.float32)


class SineSource:
    """Windows of 8-24 steps of (a sine, its cosine) around 5 with noise; the target is the
    next value of the sine."""

    splits = ("train", "val", "test")

    def prepare(self, root: Path) -> None:
        pass

    def fingerprint(self, root: Path) -> str:
        return "sine"

    def load(self, split: str, root: Path | None = None,
             on_error: str = "raise") -> tuple[list, int]:
        rng = np.random.default_rng(self.splits.index(split))
        out = []
        for _ in range(200):
            t = rng.uniform(0, 7) + 0.4 * np.arange(rng.integers(8, 25) + 1)
            wave = np.stack([5 + 3 * np.sin(t), 5 + 3 * np.cos(t)], 1)  # (T + 1, 2)
            wave += rng.normal(0, 0.05, wave.shape)
            out.append((wave[:-1].tolist(), float(wave[-1, 0])))
        return out, 0


class SineData(DataModule):
    task = "sine"

    def __init__(self, source: SineSource, scaler: str | None = None, **kwargs: Any) -> None:
        super().__init__(source, **kwargs)
        self.scaler = Scaler.from_json(scaler) if scaler else None

    def fitted_names(self) -> tuple[str, ...]:
        return ("scaler",)

    def fitted_to_build(self) -> dict[str, ToFit]:
        if self.scaler is not None:
            return {}
        rows = np.concatenate([np.asarray(w) for w, _ in self._examples("train")])  # (N, F)
        return {"scaler": ToFit(None, lambda: Scaler(rows.mean(0), rows.std(0)), Scaler)}

    def dataloader(self, split: str, *, shuffle: bool = False) -> Any:
        data = [(self.scaler(w), self.scaler([[y, 0.0]])[0, 0]) for w, y in self._examples(split)]

        def collate(batch: Sequence[tuple[np.ndarray, float]]) -> dict[str, torch.Tensor]:
            series, lengths = pad_sequences([w for w, _ in batch], 0.0, dtype=torch.float32)
            return {"series": series, "lengths": lengths,  # (B, T, F), (B,)
                    "target": torch.tensor([y for _, y in batch])}

        return self.loader(data, collate,
                           self.batch_sampler([len(w) for w, _ in data], shuffle=shuffle))


class SineNet(nn.Module):
    def __init__(self, encoder: dict) -> None:
        super().__init__()
        self.encoder = build_encoder(2, encoder)
        self.head = nn.Linear(self.encoder.output_size, 1)

    def forward(self, series: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.encoder(series, lengths)  # (B, T, H)
        index = (lengths - 1).view(-1, 1, 1).expand(-1, 1, outputs.size(2))  # (B, 1, H)
        return self.head(outputs.gather(1, index).squeeze(1)).squeeze(1)  # (B,)


class SineModule(TaskModule):
    task, max_length = "sine", 32

    def __init__(self, scaler: str, encoder: dict, optimizer: Any = None) -> None:
        super().__init__(optimizer)
        self.save_hyperparameters(ignore=["optimizer"], logger=False)
        self.scaler = Scaler.from_json(scaler)
        self.net = SineNet(encoder)
        self.mse = nn.ModuleDict({s: MeanSquaredError() for s in ("val", "test")})

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return F.mse_loss(self.net(batch["series"], batch["lengths"]), batch["target"])

    def _evaluate(self, batch: dict[str, torch.Tensor], stage: str) -> None:
        self.mse[stage].update(self.net(batch["series"], batch["lengths"]), batch["target"])
        self.log(f"{stage}/mse", self.mse[stage], batch_size=len(batch["target"]))

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    @torch.no_grad()
    def predict(self, inputs: Sequence[Any]) -> tuple[list[dict[str, Any]], int]:
        series, lengths = pad_sequences([self.scaler(w) for w in inputs], 0.0, torch.float32)
        return forecasts(self.scaler, self.net(series, lengths).numpy()), 0


def forecasts(scaler: Scaler, scaled: np.ndarray) -> list[dict[str, float]]:
    """Scaled forecasts (B,) -> ``{"forecast"}`` in the sine's original units."""
    return [{"forecast": round(float(v * scaler.std[0] + scaler.mean[0]), 5)} for v in scaled]


class OnnxSine:
    task = "sine"

    def __init__(self, export: Any) -> None:
        self.export, self.max_length = export, export.max_length
        self.scaler = Scaler.from_json(export.fitted["scaler"])

    def predict(self, inputs: Sequence[Any]) -> tuple[list[dict[str, Any]], int]:
        series, lengths = runtime.pad([self.scaler(w) for w in inputs], 0.0, np.float32)
        out = self.export.run("model", {"series": series, "lengths": lengths})["forecast"]
        return forecasts(self.scaler, out), 0


def export_sine(model: SineModule) -> Export:
    series, lengths = torch.randn(2, 5, 2), torch.tensor([5, 3])
    graph = Graph("model", model.net, (series, lengths), ["series", "lengths"], ["forecast"],
                  {"series": {0: "B", 1: "T"}, "lengths": {0: "B"}, "forecast": {0: "B"}})
    return Export([graph], {"scaler": model.scaler}, {})


def parse_series(text: str) -> list[list[float]]:
    """A command-line input: a JSON list of [sine, cosine] rows."""
    series = json.loads(text)
    if not series or any(len(row) != 2 for row in series):
        raise ValueError(f"expected a JSON list of [sine, cosine] rows, got {text!r}")
    return series


def parse_request(data: Mapping[str, Any], settings: ServeSettings) -> Call:
    """``{"series": [series, ...]}``, each a list of [sine, cosine] rows of numbers."""
    check_fields(data, {"series"}, {"series"})
    if not isinstance(data["series"], list) or not data["series"]:
        raise invalid("'series' must be a non-empty list of series")
    for i, series in enumerate(data["series"]):
        try:
            np.asarray(parse_series(json.dumps(series)), dtype=np.float32)
        except (ValueError, TypeError) as e:
            raise invalid(f"series[{i}]: {e}") from None
    return Call(data["series"])


SINE = Task(
    name="sine",
    datamodule=SineData,
    models=(SineModule,),
    model_inputs=lambda dm: dm.fitted_state(),
    prepare_eval=lambda cfg, model: instantiate(cfg.data, scaler=model.scaler.to_json()),
    export=export_sine,
    runtime=OnnxSine,
    endpoint=Endpoint("/forecast", parse=parse_request, length=lambda model, s: len(s),
                      run=lambda model, inputs, key: model.predict(inputs)[0], unit="steps",
                      describe=lambda i: f"series[{i}]"),
    parse_input=parse_series,
)

DATA = {"_target_": f"{__name__}.FirstWordData",
        "source": {"_target_": f"{__name__}.FirstWordSource", "num_examples": 300},
        "tokenizer": {"_target_": "nlp_lstm.data.TokenizerTrainer", "kind": "word"},
        "loader": {"_target_": "nlp_lstm.data.LoaderOptions", "batch_size": 32, "max_length": 64,
                   "seed": 0}}
MODEL = {"_target_": f"{__name__}.FirstWordModule",
         "encoder": {"hidden_size": 16, "bidirectional": True},
         "optimizer": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 0.03}}
SINE_DATA = {"_target_": f"{__name__}.SineData", "source": {"_target_": f"{__name__}.SineSource"},
             "loader": {"_target_": "nlp_lstm.data.LoaderOptions", "batch_size": 16,
                        "max_length": 32, "seed": 0}}
SINE_MODEL = {"_target_": f"{__name__}.SineModule", "encoder": {"hidden_size": 24},
              "optimizer": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 0.01}}
QUIET = ["trainer.max_epochs=4", "trainer.accelerator=cpu", "trainer.enable_progress_bar=false",
         "trainer.enable_model_summary=false"]


@pytest.fixture
def toy_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both toy tasks registered for this test only."""
    for task in (TOY, SINE):
        monkeypatch.setitem(TASKS, task.name, task)


def trained(tmp_path: Path, task: Task, data: dict, model: dict, monitor: str,
            mode: str) -> tuple[float, dict[str, Any]]:
    """Train through the generic ``train()``: the monitored value and metrics.json."""
    cfg = compose_train(tmp_path, QUIET)
    cfg.task = OmegaConf.create({"name": task.name, "monitor": monitor, "mode": mode})
    cfg.data, cfg.model = OmegaConf.create(data), OmegaConf.create(model)
    best = train(cfg)
    return best, json.loads((tmp_path / "metrics.json").read_text())


def evaluated(tmp_path: Path, ckpt: Path, task: Task, data: dict,
              capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """The generic ``evaluate()`` on the val split; checks its last stdout line."""
    cfg = compose_config("eval", ["task=sentiment", f"ckpt_path={ckpt}", "split=val",
                                  f"output={tmp_path / 'eval.json'}", "accelerator=cpu"])
    cfg.task = OmegaConf.create({"name": task.name})
    cfg.data = OmegaConf.create(data)
    capsys.readouterr()
    result = evaluate(cfg)
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == result
    return result


def predicted(argv: list[str], capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The generic predict command's JSON lines (the task read from the checkpoint)."""
    capsys.readouterr()
    predict_main(argv)
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def exported_and_served(ckpt: Path, out: Path, inputs: list[Any], field: str, too_long: Any,
                        bad: Any) -> None:
    """Export to ONNX; the torch-free runtime answers as the checkpoint (1e-4); the generic
    server answers ``/health``, a request (as the runtime), a 413 and a 422."""
    manifest = export(ckpt, out)
    model, onnx = load_model(ckpt), load_export(out, threads=1)
    ours, theirs = onnx.predict(inputs)[0], model.predict(inputs)[0]
    for a, b in zip(ours, theirs, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            assert a[key] == (pytest.approx(b[key], abs=1e-4) if isinstance(a[key], float)
                              else b[key])
    task = TASKS[manifest["task"]]
    path = task.endpoint.path
    with serving(OnnxBackend(out, threads=1), max_input_tokens=model.max_length) as url:
        health = httpx.get(f"{url}/health", timeout=30).json()
        assert health["task"] == task.name and health["endpoint"] == path
        r = httpx.post(f"{url}{path}", json={field: inputs}, timeout=60)
        assert r.status_code == 200 and r.json() == {"results": ours}
        r = httpx.post(f"{url}{path}", json={field: too_long}, timeout=60)
        assert r.status_code == 413 and r.json()["limit"] == model.max_length, r.text
        r = httpx.post(f"{url}{path}", json={field: bad}, timeout=60)
        assert r.status_code == 422 and "error" in r.json(), r.text


def test_a_text_task_defined_outside_the_package_runs_end_to_end(
    toy_tasks: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    best, metrics = trained(tmp_path, TOY, DATA, MODEL, "val/acc", "max")
    assert best >= 0.95  # the first word is easy for a BiLSTM
    assert metrics["test/acc"] >= 0.95 and metrics["test/examples_seen"] == 300
    ckpt = Path(metrics["checkpoint"])
    assert isinstance(load_model(ckpt, task="first_word"), FirstWordModule)
    with pytest.raises(CheckpointError, match="'first_word' checkpoint, expected a 'sentiment'"):
        load_model(ckpt, task="sentiment")

    result = evaluated(tmp_path, ckpt, TOY, DATA, capsys)
    assert result["val/acc"] == pytest.approx(metrics["val/acc"])
    assert result["val/examples_seen"] == 300 and result["examples"] == 300

    rows = predicted(["--ckpt", str(ckpt), "blue red red", "gray green"], capsys)
    assert [r["first"] for r in rows] == ["blue", "gray"]

    texts = ["blue red red", "gray green", "red", "green blue gray gray"]
    exported_and_served(ckpt, tmp_path / "onnx", texts, "texts", too_long=["red " * 65],
                        bad=[3])


def test_a_numeric_task_defined_outside_the_package_runs_end_to_end(
    toy_tasks: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    best, metrics = trained(tmp_path, SINE, SINE_DATA, SINE_MODEL, "val/mse", "min")
    assert best < 0.05  # standardised units: a sine's next value is predictable
    ckpt = Path(metrics["checkpoint"])
    model = load_model(ckpt)
    assert isinstance(model, SineModule)
    # The scaler was fitted on the training windows only, and travels in the checkpoint.
    train_rows = np.concatenate([np.asarray(w) for w, _ in SineSource().load("train")[0]])
    assert np.allclose(model.scaler.mean, train_rows.mean(0), atol=1e-5)

    result = evaluated(tmp_path, ckpt, SINE, SINE_DATA, capsys)
    assert result["val/mse"] == pytest.approx(metrics["val/mse"])
    assert result["examples"] == 200

    windows = [w for w, _ in SineSource().load("test")[0][:4]]
    targets = [y for _, y in SineSource().load("test")[0][:4]]
    rows = predicted(["--ckpt", str(ckpt), *map(json.dumps, windows)], capsys)
    assert [r["forecast"] for r in rows] == [r["forecast"] for r in model.predict(windows)[0]]
    assert np.abs(np.array([r["forecast"] for r in rows]) - targets).max() < 0.6
    with pytest.raises(SystemExit) as e:
        predict_main(["--ckpt", str(ckpt), "[[1, 2, 3]]"])
    assert e.value.code == 2 and "expected a JSON list of [sine, cosine] rows" in \
        capsys.readouterr().err

    exported_and_served(ckpt, tmp_path / "onnx", windows, "series", too_long=[[[5.0, 5.0]] * 40],
                        bad=[[["a", 5.0]]])


def test_train_refuses_data_of_another_task(toy_tasks: None, tmp_path: Path) -> None:
    cfg = compose_train(tmp_path, QUIET)
    cfg.data = OmegaConf.create(DATA)  # task=sentiment with the toy task's data
    with pytest.raises(ValueError, match="task=sentiment needs data served by "
                                         "SentimentDataModule, but the data config builds a "
                                         "FirstWordData"):
        train(cfg)
