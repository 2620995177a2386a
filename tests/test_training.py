"""Models, schedule, configs and the train function."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest
import torch
from conftest import TINY, compose_train
from hydra.utils import instantiate

from nlp_lstm.core.cli import CONFIG_DIR
from nlp_lstm.data import Tokenizer
from nlp_lstm.data.batching import pad_sequences
from nlp_lstm.drivers.registry import TASKS, load_model
from nlp_lstm.forecasting.series import StandardScaler
from nlp_lstm.sentiment import BagOfWordsClassifier, SentimentClassifier
from nlp_lstm.sentiment.corpus import generate_sentiment
from nlp_lstm.training.optim import WarmupCosineLR
from nlp_lstm.training.precision import choose_precision


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


# The task each data config serves; the train config pairs only sentiment ones with its model.
DATA_TASKS = {"sentiment_synthetic": "sentiment", "sst2": "sentiment", "tsv": "sentiment",
              "translation_synthetic": "translation", "multi30k": "translation",
              "parallel": "translation", "generation_synthetic": "generation",
              "tinyshakespeare": "generation", "text": "generation",
              "forecast_synthetic": "forecasting", "ett": "forecasting", "imdb": "sentiment",
              "imdb_unsup": "generation", "sst2_text": "generation"}
# The task of each model config that is not sentiment's.
MODEL_TASKS = {"seq2seq_attention": "translation", "lstm_lm": "generation",
               "segment_rnn": "forecasting"}
REQUIRED = {"data=tsv": ["data.source.train=a.tsv", "data.source.val=b.tsv"],
            "data=parallel": ["data.source.train=[a.src,a.tgt]", "data.source.val=[b.src,b.tgt]"],
            "data=text": ["data.source.train=a.txt"],
            "model=sentiment_student": ["model.teacher_ckpt=teacher.ckpt"],
            "experiment=sst2_distill": ["model.teacher_ckpt=teacher.ckpt"],
            "experiment=sst2_pretrained": ["model.init_from.ckpt=[a.ckpt]"],
            # the synthetic vocabulary is smaller than the IMDB softmax's clusters
            "experiment=pretrain_imdb": ["model.adaptive_cutoffs=[5]"],
            "experiment=imdb_pretrained": ["model.init_from.ckpt=[a.ckpt]"],
            "experiment=multi30k_seqkd": ["data.source.train=[a.de,a.en]"]}


def test_every_data_config_has_a_task():
    assert set(_options("data")) == set(DATA_TASKS)


@pytest.mark.parametrize(
    "override",
    [f"{group}={name}" for group in ("data", "model", "encoder", "trainer", "callbacks",
                                     "logger", "task", "experiment", "debug")
     for name in _options(group)],
)
def test_every_config_composes_and_instantiates(override, tmp_path):
    """Constructors do no I/O, so every node builds without the data it points to."""
    group, name = override.split("=")
    data_task = DATA_TASKS[name] if group == "data" else MODEL_TASKS.get(name)
    task_override = [f"task={data_task}"] if data_task in TASKS else []
    cfg = compose_train(tmp_path, [*task_override, override, *REQUIRED.get(override, [])])
    dm = instantiate(cfg.data)
    assert dm.task == (data_task or cfg.task.name)
    assert dm.task == cfg.task.name
    tokenizer = Tokenizer.train_word_level(["the film was good", "the plot was bad"])
    inputs = {"tokenizer": tokenizer.to_json()}
    if dm.task == "sentiment":
        inputs["labels"] = ["negative", "positive"]
    if dm.task == "forecasting":  # what the data module's scaler and columns give a model
        inputs = {"scaler": StandardScaler([0.0, 0.0], [1.0, 1.0]).to_json(),
                  "columns": ["a", "OT"], "targets": ["OT"], "input_length": 96,
                  "horizon": 24}
    model = instantiate(cfg.model, **inputs, _convert_="all")
    callbacks = [instantiate(c) for c in cfg.callbacks.values() if c]
    assert model.task == cfg.task.name and callbacks
    if cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available():
        return  # a GPU preset composes here; Lightning refuses to build it without a GPU
    precision = ({"precision": choose_precision(cfg.trainer.accelerator)[0]}  # as train() does
                 if cfg.trainer.precision == "auto" else {})
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=instantiate(cfg.logger),
                          **precision)
    assert trainer is not None


def test_warmup_cosine_schedule():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = WarmupCosineLR(opt, total_steps=10, warmup_steps=4, min_lr_ratio=0.1)
    lrs = []
    for _ in range(12):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:4] == pytest.approx([0.2, 0.4, 0.6, 0.8])  # linear warmup
    assert lrs[4] == pytest.approx(1.0)  # peak
    assert all(a >= b for a, b in itertools.pairwise(lrs[4:]))  # then only down
    assert lrs[10] == pytest.approx(0.1) and lrs[11] == pytest.approx(0.1)  # floor
    assert lrs[7] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 3 / 6)))
    assert WarmupCosineLR(opt, total_steps=3, warmup_steps=5).warmup_steps == 3  # capped
    with pytest.raises(ValueError, match="warmup_steps"):
        WarmupCosineLR(opt, total_steps=3, warmup_steps=-1)


def test_warmup_stable_decay_schedule():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    wsd = WarmupCosineLR(opt, total_steps=24, warmup_steps=4, min_lr_ratio=0.1, decay_frac=0.25)
    assert [wsd.factor(s) for s in range(4)] == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert [wsd.factor(s) for s in range(4, 20)] == [1.0] * 16  # stable until step 19
    assert wsd.factor(22) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 3 / 5)))
    assert wsd.factor(24) == wsd.factor(30) == pytest.approx(0.1)  # the last 5 steps decay
    wsd.set_total_steps(44)  # a budget's new plan moves the decay's start, not its length share
    assert wsd.factor(30) == 1.0 and wsd.factor(44) == pytest.approx(0.1)
    cosine = WarmupCosineLR(opt, total_steps=24, warmup_steps=4, min_lr_ratio=0.1)
    whole = WarmupCosineLR(opt, total_steps=24, warmup_steps=4, min_lr_ratio=0.1, decay_frac=1.0)
    assert [whole.factor(s) for s in range(30)] == [cosine.factor(s) for s in range(30)]
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(ValueError, match=f"decay_frac must be in \\(0, 1\\], got {bad}"):
            WarmupCosineLR(opt, total_steps=10, decay_frac=bad)


@pytest.mark.parametrize("cls", [SentimentClassifier, BagOfWordsClassifier])
def test_tiny_overfit(cls):
    """A model must be able to memorize 24 sentences: the whole path can learn."""
    torch.manual_seed(0)
    examples = generate_sentiment(24, seed=1)
    tok = Tokenizer.train_word_level([e.text for e in examples])
    size = {"encoder": {"hidden_size": 32, "bidirectional": True}} \
        if cls is SentimentClassifier else {"hidden_size": 32}
    model = cls(tok.to_json(), ["negative", "positive"], embedding_dim=32, dropout=0.0, **size)
    tokens, lengths = pad_sequences([tok.encode(e.text) for e in examples], tok.pad_id)
    labels = torch.tensor([e.label for e in examples])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        opt.zero_grad()
        loss = model.loss(model(tokens, lengths), labels)
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    assert (model(tokens, lengths).argmax(-1) == labels).all()


@pytest.mark.parametrize("task", ["sentiment", "generation"])
def test_chrono_init_from_the_config(task, tmp_path):
    """model.encoder.init=chrono with max_timescale reaches the encoder's gate biases."""
    cfg = compose_train(tmp_path, [f"task={task}", "model.encoder.init=chrono",
                                   "model.encoder.max_timescale=64"])
    tokenizer = Tokenizer.train_word_level(["the film was good", "the plot was bad"])
    inputs = {"tokenizer": tokenizer.to_json()}
    if task == "sentiment":
        inputs["labels"] = ["negative", "positive"]
    model = instantiate(cfg.model, **inputs, _convert_="all")
    biases = [p for n, p in model.named_parameters() if "bias_ih" in n]
    H = cfg.model.encoder.hidden_size
    assert biases and all(b[H : 2 * H].min() >= 0 and b[H : 2 * H].std() > 0.3 for b in biases)


def test_fast_dev_run_through_hydra_compose(tmp_path):
    from nlp_lstm.drivers.train import train

    cfg = compose_train(tmp_path, [*TINY, "debug=fdr"])
    assert train(cfg) is None  # no validation metrics to report from a smoke run
    assert (tmp_path / "config.yaml").is_file()


def test_train_writes_run_directory(trained_run: Path):
    metrics = json.loads((trained_run / "metrics.json").read_text())
    for key in ("val/acc", "val/f1", "val/loss", "test/acc", "test/f1"):
        assert 0.0 <= metrics[key] <= max(1.0, metrics[key]), key
    assert len(metrics["test/confusion"]) == 2
    assert sum(map(sum, metrics["test/confusion"])) == 60  # the tiny corpus's test split
    assert {p.name for p in (trained_run / "checkpoints").iterdir()} == {"best.ckpt", "last.ckpt"}
    assert (trained_run / "csv" / "metrics.csv").is_file()
    config = (trained_run / "config.yaml").read_text()
    assert "_target_: nlp_lstm.sentiment.SentimentClassifier" in config


def test_checkpoint_is_weights_only_and_self_contained(checkpoint: Path):
    raw = torch.load(checkpoint, weights_only=True)
    assert raw["nlp_lstm"]["task"] == "sentiment"
    assert isinstance(raw["hyper_parameters"]["tokenizer"], str)
    assert "optimizer" not in raw["hyper_parameters"]
    model = SentimentClassifier.load_from_checkpoint(checkpoint, map_location="cpu",
                                                     weights_only=True)
    results, truncated = model.predict(["The plot was not good.", "great " * 500])
    assert truncated == 1  # the guard cut the long input and nothing crashed
    assert all(sum(r["probs"].values()) == pytest.approx(1.0, abs=1e-5) for r in results)


@pytest.mark.parametrize("variant", [{"cell": "gru"}, {"layer_norm": True},
                                     {"weight_drop": 0.3}, {"impl": "loop", "pooling": "last"}])
def test_encoder_variants_from_the_model_config(variant, tmp_path):
    """cell, layer_norm, weight_drop and impl reach the encoder from YAML, and each trains."""
    overrides = [f"model.{'' if k == 'pooling' else 'encoder.'}{k}="
                 f"{str(v).lower() if isinstance(v, bool) else v}" for k, v in variant.items()]
    cfg = compose_train(tmp_path, [*TINY, *overrides, "debug=limit", "test=false"])
    from nlp_lstm.drivers.train import train

    assert train(cfg) is not None
    model = load_model(tmp_path / "checkpoints" / "best.ckpt", task="sentiment")
    settings = {**model.hparams["encoder"], "pooling": model.hparams["pooling"]}
    assert all(settings[key] == value for key, value in variant.items())
    encoder = model.net.encoder
    assert encoder.cell == variant.get("cell", "lstm")
    assert encoder.layer_norm == variant.get("layer_norm", False)
    assert encoder.weight_drop == variant.get("weight_drop", 0.0)
