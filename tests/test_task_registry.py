"""The task is the unit of extension: a toy task defined here, in the test file alone, trains,
evaluates and predicts through the generic commands, with no change to the package."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from conftest import compose_train
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from nlp_lstm.checkpoint import CheckpointError
from nlp_lstm.cli import compose_config
from nlp_lstm.commands.predict import main as predict_main
from nlp_lstm.data import TextDataModule
from nlp_lstm.data.batching import pad_sequences
from nlp_lstm.evaluate import evaluate
from nlp_lstm.module import TaskModule
from nlp_lstm.nn import build_encoder, lengths_to_mask
from nlp_lstm.registry import TASKS, Task, load_model
from nlp_lstm.train import train

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
    task = "first_word"

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


TOY = Task(
    name="first_word",
    datamodule=FirstWordData,
    models=(FirstWordModule,),
    model_inputs=lambda dm: {"tokenizer": dm.tokenizer.to_json()},
    prepare_eval=lambda cfg, model: instantiate(cfg.data,
                                                trained_tokenizer=model.tokenizer.to_json()),
)

DATA = {"_target_": f"{__name__}.FirstWordData",
        "source": {"_target_": f"{__name__}.FirstWordSource", "num_examples": 300},
        "tokenizer": {"_target_": "nlp_lstm.data.TokenizerTrainer", "kind": "word"},
        "batch_size": 32, "max_length": 64, "seed": 0}
MODEL = {"_target_": f"{__name__}.FirstWordModule",
         "encoder": {"hidden_size": 16, "bidirectional": True},
         "optimizer": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 0.03}}
QUIET = ["trainer.max_epochs=4", "trainer.accelerator=cpu", "trainer.enable_progress_bar=false",
         "trainer.enable_model_summary=false"]


@pytest.fixture
def toy_task(monkeypatch: pytest.MonkeyPatch) -> Task:
    monkeypatch.setitem(TASKS, TOY.name, TOY)
    return TOY


def test_a_task_defined_outside_the_package_trains_evaluates_and_predicts(
    toy_task: Task, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = compose_train(tmp_path, QUIET)
    cfg.task = OmegaConf.create({"name": "first_word", "monitor": "val/acc", "mode": "max"})
    cfg.data, cfg.model = OmegaConf.create(DATA), OmegaConf.create(MODEL)
    assert train(cfg) >= 0.95  # the first word is easy for a BiLSTM

    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["test/acc"] >= 0.95 and metrics["test/examples_seen"] == 300
    ckpt = Path(metrics["checkpoint"])
    assert isinstance(load_model(ckpt, task="first_word"), FirstWordModule)
    with pytest.raises(CheckpointError, match="'first_word' checkpoint, expected a 'sentiment'"):
        load_model(ckpt, task="sentiment")

    eval_cfg = compose_config("eval", ["task=sentiment", f"ckpt_path={ckpt}", "split=val",
                                       f"output={tmp_path / 'eval.json'}", "accelerator=cpu"])
    eval_cfg.task, eval_cfg.data = cfg.task, OmegaConf.create(DATA)
    capsys.readouterr()
    result = evaluate(eval_cfg)
    assert result["val/acc"] == pytest.approx(metrics["val/acc"])
    assert result["val/examples_seen"] == 300
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == result

    predict_main(["--ckpt", str(ckpt), "blue red red", "gray green"], task="first_word")
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["first"] for r in rows] == ["blue", "gray"]


def test_train_refuses_data_of_another_task(toy_task: Task, tmp_path: Path) -> None:
    cfg = compose_train(tmp_path, QUIET)
    cfg.data = OmegaConf.create(DATA)  # task=sentiment with the toy task's data
    with pytest.raises(ValueError, match="task=sentiment needs data served by "
                                         "SentimentDataModule, but the data config builds a "
                                         "FirstWordData"):
        train(cfg)
