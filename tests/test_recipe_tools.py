"""What the translation recipe's diagnosis stands on (issue 31): the per-step training curve,
the seeds command, and the control experiment with OpenNMT-py's settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from conftest import ROOT, TINY, compose_train
from hydra.utils import instantiate
from omegaconf import OmegaConf

from benchmarks.seeds import summarize
from nlp_lstm.data.tokenizer import Tokenizer, TokenizerTrainer
from nlp_lstm.training.callbacks import TrainingCurve, read_curve
from nlp_lstm.translation import Seq2SeqTranslator

PEER = ROOT.parent / "shared" / "peers" / "onmt" / "train.yaml"
QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


# ----------------------------------------------------------------------- training curve
class Linear(pl.LightningModule):
    """loss = w . x_b, so the gradient of step b is x_b and its norm is known exactly."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(3))

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        return (self.w * batch[0]).sum()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.5)


def test_training_curve_logs_every_step_and_the_norm_before_clipping(tmp_path):
    xs = torch.tensor([[3.0, 4.0, 0.0], [0.0, 0.0, 2.0], [1.0, 2.0, 2.0], [6.0, 8.0, 0.0]])
    curve = TrainingCurve(dirpath=str(tmp_path), flush_every=3)  # one flush midway, one at end
    trainer = pl.Trainer(max_steps=4, accelerator="cpu", logger=False, callbacks=[curve],
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, gradient_clip_val=0.1)
    trainer.fit(Linear(), torch.utils.data.DataLoader(xs.unsqueeze(1), batch_size=None))
    rows = read_curve(tmp_path / "curve.csv")
    assert rows["step"] == [1.0, 2.0, 3.0, 4.0]
    assert rows["grad_norm"] == pytest.approx([5.0, 2.0, 3.0, 10.0])  # not the clipped 0.1
    assert rows["lr"] == [0.5] * 4
    w = torch.zeros(3)
    for x, loss in zip(xs, rows["loss"], strict=True):  # each loss from the weights before
        assert loss == pytest.approx(float(w @ x), abs=1e-6)
        w -= 0.5 * x * min(1.0, 0.1 / float(x.norm()))  # SGD on the clipped gradient
    assert all(s2 >= s1 for s1, s2 in zip(rows["seconds"], rows["seconds"][1:], strict=False))


def test_every_run_writes_its_curve(tmp_path):
    from nlp_lstm.drivers.train import train

    train(compose_train(tmp_path, [*TINY, "trainer.max_steps=6", "trainer.max_epochs=-1",
                                   "test=false", *QUIET]))
    rows = read_curve(tmp_path / "curve.csv")
    assert rows["step"] == [float(s) for s in range(1, 7)]
    assert all(g > 0 for g in rows["grad_norm"]) and all(lr > 0 for lr in rows["lr"])


def test_bad_flush_every():
    with pytest.raises(ValueError, match="flush_every must be positive, got 0"):
        TrainingCurve(flush_every=0)


# --------------------------------------------------------------------------------- seeds
def test_summarize_uses_the_sample_std():
    s = summarize([37.0, 38.0, 39.0])
    assert (s["n"], s["mean"], s["std"], s["min"], s["max"]) == (3, 38.0, 1.0, 37.0, 39.0)
    assert summarize([4.0])["std"] == 0.0
    with pytest.raises(ValueError):
        summarize([])


def _seeds(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NLP_LSTM_DEBUG": ""}
    return subprocess.run([sys.executable, "-m", "benchmarks.seeds", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, env=env)


def test_seeds_command_prints_each_seed_and_mean_and_std(tmp_path):
    tiny = ["--", "data.source.num_examples=200", "data.loader.batch_size=32",
            "model.embedding_dim=16", "model.encoder.hidden_size=16", "trainer.max_steps=8",
            "trainer.max_epochs=-1", *QUIET]
    proc = _seeds("--seeds", "1", "2", "--out", str(tmp_path), *tiny)
    assert proc.returncode == 0, proc.stderr[-3000:]
    values = {s: json.loads((tmp_path / f"seed_{s}" / "metrics.json").read_text())["val/acc"]
              for s in (1, 2)}
    mean = (values[1] + values[2]) / 2
    std = abs(values[1] - values[2]) / 2**0.5
    assert f"val/acc: {mean:.4f} ± {std:.4f} (mean ± std over 2 seeds" in proc.stdout
    for s in (1, 2):
        assert f"seed {s}: val/acc = {values[s]:.4f}" in proc.stdout
        assert OmegaConf.load(tmp_path / f"seed_{s}" / "config.yaml").seed == s
    saved = json.loads((tmp_path / "seeds.json").read_text())
    assert saved["summary"]["mean"] == pytest.approx(mean) and saved["failed"] == {}
    # --resume keeps finished seeds: nothing runs again
    (tmp_path / "seed_1" / "metrics.json").write_text(json.dumps({"val/acc": 0.25}))
    proc = _seeds("--seeds", "1", "2", "--out", str(tmp_path), "--resume", *tiny)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "seed 1: val/acc = 0.2500" in proc.stdout and "train.py" not in proc.stdout


def test_seeds_command_reports_a_failed_seed(tmp_path):
    proc = _seeds("--seeds", "1", "--out", str(tmp_path), "--", "model.dropout=2.0", *QUIET)
    assert proc.returncode == 2
    assert "seed 1: train.py exited 2" in proc.stderr
    assert "dropout" in (tmp_path / "seed_1" / "train.out").read_text()


def test_seeds_command_refuses_its_own_overrides(tmp_path):
    proc = _seeds("--seeds", "1", "--out", str(tmp_path), "--", "seed=3")
    assert proc.returncode == 2 and "set per seed" in proc.stderr


# ----------------------------------------------------------------- the control experiment
def test_control_experiment_has_the_peers_settings(tmp_path):
    cfg = compose_train(tmp_path, ["experiment=multi30k_onmt"])
    m = cfg.model
    assert (m.embedding_dim, m.hidden_size, m.encoder.hidden_size, m.encoder.num_layers,
            m.decoder_layers) == (256, 512, 256, 2, 2)
    assert (m.attention, m.input_feeding, m.bridge, m.tie_embeddings) == (
        "luong_general", True, "copy", False)
    assert m.optimizer._target_ == "torch.optim.Adam" and m.scheduler is None
    assert (m.loss_normalization, m.param_init) == ("sentences", 0.1)
    assert cfg.data.tokenizer.kind == "sp_bpe" and cfg.data.target_tokenizer is None
    assert cfg.callbacks.model_checkpoint.monitor is None and cfg.budget is None
    if not PEER.is_file():
        pytest.skip(f"the peer's settings are not at {PEER}")
    peer = OmegaConf.load(PEER)
    assert (peer.encoder_type, peer.rnn_type, peer.global_attention, peer.input_feed,
            peer.optim, peer.decay_method, peer.batch_type) == (
        "brnn", "LSTM", "general", 1, "adam", "none", "sents")
    ours = {"word_vec_size": m.embedding_dim, "hidden_size": m.hidden_size,
            "layers": m.decoder_layers, "dropout": [m.dropout], "learning_rate": m.optimizer.lr,
            "batch_size": cfg.data.loader.batch_size,
            "max_grad_norm": cfg.trainer.gradient_clip_val,
            "label_smoothing": m.label_smoothing, "param_init": m.param_init,
            "train_steps": cfg.trainer.max_steps}
    assert ours == {k: peer[k] for k in ours}
    assert m.encoder.num_layers == peer.layers and 2 * m.encoder.hidden_size == peer.hidden_size


def test_control_model_builds_like_the_peer():
    tokenizer = TokenizerTrainer(kind="sp_bpe", lowercase=False, min_freq=1,
                                 vocab_size=200).train(["ein Mann fährt Rad", "a man rides"] * 5)
    cfg = compose_train(Path("/tmp"), ["experiment=multi30k_onmt"])
    model: Seq2SeqTranslator = instantiate(cfg.model, tokenizer=tokenizer.to_json(),
                                           _convert_="all")
    params = dict(model.net.named_parameters())
    assert not [n for n in params if n.startswith("bridge.")]
    assert max(p.abs().max().item() for p in params.values()) <= 0.1
    assert model.net.decoder.bias_ih_l0.abs().max() <= 0.1  # no forget-gate bias of 1
    assert model.net.src_embedding.weight[tokenizer.pad_id].abs().sum() == 0


# --------------------------------------------------------------------- loss, tokenizer
def _batch(tokenizer: Tokenizer) -> dict:
    from nlp_lstm.data.batching import pad_sequences

    src, src_lengths = pad_sequences([[5, 6, 7], [8, 9]], tokenizer.pad_id)
    tgt, tgt_lengths = pad_sequences([[2, 5, 6, 7, 3], [2, 8, 3]], tokenizer.pad_id)
    return {"src": src, "src_lengths": src_lengths, "tgt_in": tgt[:, :-1],
            "tgt_out": tgt[:, 1:], "tgt_lengths": tgt_lengths - 1}


def test_loss_normalization_by_sentences_is_the_token_mean_times_tokens_per_sentence():
    tokenizer = Tokenizer.train_word_level(["a b c d e f g h i j k"])
    losses = {}
    for norm in ("tokens", "sentences"):
        torch.manual_seed(0)
        model = Seq2SeqTranslator(tokenizer.to_json(), embedding_dim=8, hidden_size=8,
                                  encoder={"hidden_size": 4, "num_layers": 1},
                                  decoder_layers=1, dropout=0.0, loss_normalization=norm)
        losses[norm] = model.training_step(_batch(tokenizer), 0)
    # 4 + 2 real target tokens over 2 sentences
    torch.testing.assert_close(losses["sentences"], losses["tokens"] * 6 / 2)
    with pytest.raises(ValueError, match="loss_normalization must be one of"):
        Seq2SeqTranslator(tokenizer.to_json(), loss_normalization="words")


def test_sp_bpe_tokenizer():
    texts = ["Ein Mädchen klettert über Fässer.", "Zwei Männer fahren Rad."] * 20
    tokenizer = TokenizerTrainer(kind="sp_bpe", lowercase=False, min_freq=1,
                                 vocab_size=120).train(texts)
    assert tokenizer.kind == "sp_bpe"
    assert Tokenizer.from_json(tokenizer.to_json()).kind == "sp_bpe"
    assert TokenizerTrainer(kind="bpe", lowercase=False, vocab_size=300).train(texts).kind == "bpe"
    for text in texts[:2]:
        assert tokenizer.decode(tokenizer.encode(text)) == text
    assert "ä" in tokenizer.backend.get_vocab()  # a character, not two bytes
    assert all(t.startswith("\u2581") for t in tokenizer.tokenize("Ein Rad")[:1])
    assert tokenizer.unk_id in tokenizer.encode("Ein Ω")  # never seen in training
    with pytest.raises(ValueError, match="sp_bpe tokenizer needs a vocab_size"):
        TokenizerTrainer(kind="sp_bpe", vocab_size=None)


# ------------------------------------------------------------------- comparing curves
def _fake_run(folder: Path, losses: list[float]) -> Path:
    folder.mkdir(parents=True)
    lines = ["step,loss,grad_norm,lr,seconds"]
    lines += [f"{i + 1},{loss},{1.0 / (i + 1)},0.001,{i * 0.5}" for i, loss in enumerate(losses)]
    (folder / "curve.csv").write_text("\n".join(lines) + "\n")
    (folder / "csv").mkdir()
    (folder / "csv" / "metrics.csv").write_text("epoch,step,val/bleu\n0,4,10.0\n1,8,20.0\n")
    (folder / "config.yaml").write_text("task:\n  monitor: val/bleu\n")
    return folder


def test_plot_compares_runs_step_by_step(tmp_path):
    from nlp_lstm.evaluation.plot import _running_mean, plot_curves

    assert _running_mean([1.0, 3.0, 5.0, 7.0], 2) == [1.0, 2.0, 4.0, 6.0]
    a = _fake_run(tmp_path / "a", [9.0 - i for i in range(8)])
    b = _fake_run(tmp_path / "b", [9.0 - i / 2 for i in range(8)])
    out = plot_curves([a, b], tmp_path / "cmp.png", smooth=3, labels=["fast", "slow"])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    with pytest.raises(ValueError, match=r"no curve\.csv in"):
        plot_curves([a, tmp_path], tmp_path / "x.png")
    with pytest.raises(ValueError, match="1 labels for 2 runs"):
        plot_curves([a, b], tmp_path / "x.png", labels=["one"])
    proc = subprocess.run([sys.executable, "-m", "tasks.plot", str(a), str(b)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "comparing runs needs --out" in proc.stderr
