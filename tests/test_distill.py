"""Knowledge distillation: the loss, the transfer set, the cached teacher logits, a tiny
distillation run on the embedded corpus (teacher: the session's tiny checkpoint), the configs,
and every bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY, compose_train
from omegaconf import OmegaConf

from nlp_lstm.data import Tokenizer
from nlp_lstm.data.loader import LoaderOptions
from nlp_lstm.drivers.registry import load_model
from nlp_lstm.drivers.train import train
from nlp_lstm.sentiment import Augmentation, DistilledClassifier, TransferSetDataModule
from nlp_lstm.sentiment.corpus import SyntheticSentiment
from nlp_lstm.sentiment.distill import distillation_loss
from nlp_lstm.sentiment.teacher import compute_logits, teacher_embedding, teacher_logits
from nlp_lstm.sentiment.transfer_set import UNLABELED

pytestmark = pytest.mark.usefixtures("one_thread")

STUDENT = ["model=sentiment_student", *TINY, "model.encoder.hidden_size=16"]


def _log_softmax(row: list[float], temperature: float) -> list[float]:
    z = [x / temperature for x in row]
    m = max(z)
    lse = m + math.log(sum(math.exp(x - m) for x in z))
    return [x - lse for x in z]


# ------------------------------------------------------------------------- the loss
def test_loss_equals_the_formula_on_hand_computed_values():
    student = [[1.0, -1.0, 0.5], [0.0, 2.0, -0.5]]
    teacher = [[3.0, 0.0, -1.0], [-1.0, 1.0, 0.0]]
    labels = [0, 2]
    alpha, T = 0.3, 2.0
    ce = -sum(_log_softmax(s, 1.0)[y] for s, y in zip(student, labels, strict=True)) / 2
    kl = sum(
        sum(math.exp(pt) * (pt - ps) for pt, ps in
            zip(_log_softmax(t, T), _log_softmax(s, T), strict=True))
        for s, t in zip(student, teacher, strict=True)
    ) / 2
    f64 = torch.float64
    total, hard, soft = distillation_loss(torch.tensor(student, dtype=f64),
                                          torch.tensor(teacher, dtype=f64),
                                          torch.tensor(labels), alpha, T)
    assert hard.item() == pytest.approx(ce, rel=1e-12)
    assert soft.item() == pytest.approx(T**2 * kl, rel=1e-12)
    assert total.item() == pytest.approx(alpha * ce + (1 - alpha) * T**2 * kl, rel=1e-12)


def test_t_squared_keeps_the_soft_gradient_on_the_logits_scale():
    """d(T^2 KL)/dz_student = T (q - p) -> (z_student - z_teacher) / C for large T and
    zero-mean logits (Hinton et al. 2015): the T^2 factor makes it independent of T."""
    s0 = torch.tensor([[0.6, -0.2, -0.4]], dtype=torch.float64)
    t = torch.tensor([[1.0, 0.5, -1.5]], dtype=torch.float64)
    labels = torch.tensor([0])
    grads = {}
    for T in (1.0, 4.0, 1000.0):
        s = s0.clone().requires_grad_(True)
        _, _, soft = distillation_loss(s, t, labels, alpha=0.0, temperature=T)
        soft.backward()
        grads[T] = s.grad
        q, p = F.softmax(s0 / T, -1), F.softmax(t / T, -1)
        assert torch.allclose(s.grad, T * (q - p), atol=1e-12)  # the T^2 scaling, exactly
    assert torch.allclose(grads[1000.0], (s0 - t) / 3, atol=1e-3)
    # without T^2 the gradient would shrink as 1/T; with it, it stays put
    assert grads[4.0].norm() > 0.5 * grads[1.0].norm()


def test_alpha_one_is_plain_cross_entropy_whatever_the_teacher():
    student = torch.randn(5, 3)
    labels = torch.tensor([0, 1, 2, 1, 0])
    ce = F.cross_entropy(student, labels)
    for teacher in (torch.randn(5, 3), torch.full((5, 3), float("nan"))):
        total, _, soft = distillation_loss(student, teacher, labels, alpha=1.0,
                                           temperature=3.0)
        assert total.item() == pytest.approx(ce.item(), rel=1e-6) and soft.item() == 0.0


def test_unlabeled_examples_count_in_the_soft_term_only():
    student, teacher = torch.randn(4, 2), torch.randn(4, 2)
    labels = torch.tensor([1, UNLABELED, 0, UNLABELED])
    _, hard, soft = distillation_loss(student, teacher, labels, 0.5, 2.0)
    assert hard.item() == pytest.approx(F.cross_entropy(student[[0, 2]], labels[[0, 2]]).item())
    none = torch.full((4,), UNLABELED)
    total, hard, soft = distillation_loss(student, teacher, none, 0.5, 2.0)
    assert hard.item() == 0.0 and total.item() == pytest.approx(0.5 * soft.item())


def test_mse_soft_loss_is_on_logits():
    student, teacher = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 4.0]])
    _, _, soft = distillation_loss(student, teacher, torch.tensor([0]), 0.5, 7.0, "mse")
    assert soft.item() == pytest.approx((1.0 + 4.0) / 2)


# ------------------------------------------------------------------ transfer set
def test_augmentation_is_deterministic_new_and_bounded():
    seqs = [[5, 6, 7, 8, 9, 10], [11, 12, 13], [14]]
    aug = Augmentation(copies=3, p_mask=0.2, p_ngram=0.5, ngram_max=2, seed=1)
    variants = aug(seqs, mask_id=1)
    assert variants == aug(seqs, mask_id=1)  # the same seed, the same transfer set
    assert variants != Augmentation(copies=3, p_mask=0.2, p_ngram=0.5, seed=2)(seqs, mask_id=1)
    keys = [tuple(v) for v in variants]
    assert len(set(keys)) == len(keys) and not set(keys) & {tuple(s) for s in seqs}
    assert 0 < len(variants) <= 3 * 2  # the one-token example gets none (min_length 2)
    for v in variants:
        assert 1 <= len(v) <= 6 and set(v) <= set(range(5, 14)) | {1}
    assert Augmentation(copies=0)(seqs, mask_id=1) == []


def test_transfer_set_appends_unlabeled_variants():
    dm = TransferSetDataModule(source=SyntheticSentiment(200, seed=0),
                               augment=Augmentation(copies=2), loader=LoaderOptions(batch_size=16))
    dm.setup("fit")
    plain = TransferSetDataModule(source=SyntheticSentiment(200, seed=0),
                                  loader=LoaderOptions(batch_size=16))
    plain.setup("fit")
    labeled = plain.dataset("train")
    data = dm.dataset("train")
    assert data[: len(labeled)] == labeled and len(data) > len(labeled)
    assert all(label == UNLABELED for _, label in data[len(labeled):])
    assert dm.dataset("val") == plain.dataset("val")  # only the training split grows
    assert dm.tokenizer.to_json() == plain.tokenizer.to_json()  # learned from labeled texts
    seen = torch.cat([b["index"] for b in dm.train_dataloader()])
    assert sorted(seen.tolist()) == list(range(len(data)))  # every example, by its index


# --------------------------------------------------------------- teacher logits
def test_cached_logits_equal_the_teachers_forward(checkpoint, tmp_path, monkeypatch):
    teacher = load_model(checkpoint, "sentiment")
    seqs = [teacher.tokenizer.encode(t) for t in
            ("the plot was not good", "the cast was superb", "awful", "the film was dull at "
             "first , but brilliant in the end")]
    logits = teacher_logits(teacher, checkpoint, seqs, tmp_path)
    with torch.no_grad():
        for seq, row in zip(seqs, logits, strict=True):
            one = teacher(torch.tensor([seq]), torch.tensor([len(seq)]))[0]  # alone, unpadded
            assert torch.allclose(row, one, atol=1e-5)
    assert len(list((tmp_path / "teacher_logits").glob("*.pt"))) == 1

    def no_compute(*args):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr("nlp_lstm.sentiment.teacher.compute_logits", no_compute)
    assert torch.equal(teacher_logits(teacher, checkpoint, seqs, tmp_path), logits)
    with pytest.raises(AssertionError, match="cache"):  # other sequences: another key
        teacher_logits(teacher, checkpoint, seqs[:3], tmp_path)


def test_compute_logits_keeps_the_input_order(checkpoint):
    teacher = load_model(checkpoint, "sentiment")
    seqs = [[5, 6, 7], [8], [9, 10], [11, 12, 13, 14]]
    whole = compute_logits(teacher, seqs, batch_size=2)  # batches follow lengths, not order
    for i in range(len(seqs)):
        assert torch.allclose(whole[i], compute_logits(teacher, [seqs[i]])[0], atol=1e-5)


# ----------------------------------------------------------------- training runs
def _run(tmp_path: Path, overrides: list[str]) -> dict:
    train(compose_train(tmp_path, [*STUDENT, *overrides]))
    return json.loads((tmp_path / "metrics.json").read_text())


def test_tiny_distillation_run_trains_and_the_student_stands_alone(checkpoint, tmp_path):
    teacher = tmp_path / "teacher.ckpt"
    teacher.write_bytes(checkpoint.read_bytes())
    metrics = _run(tmp_path / "run", [f"model.teacher_ckpt={teacher}", "model.alpha=0.5",
                                      "model.temperature=2.0"])
    csv = (tmp_path / "run" / "csv" / "metrics.csv").read_text().splitlines()[0]
    assert "train/hard" in csv and "train/soft" in csv
    assert len(list((tmp_path / "run" / "cache" / "teacher_logits").glob("*.pt"))) == 1
    teacher.unlink()  # the student must not need it
    student = load_model(metrics["checkpoint"], "sentiment")
    assert isinstance(student, DistilledClassifier)
    assert not student.net.encoder.bidirectional and student.net.encoder.hidden_size == 16
    state = torch.load(metrics["checkpoint"], weights_only=True)["state_dict"]
    assert not any("teacher" in key for key in state)
    texts = ["The plot was not good.", "The cast was superb."]
    results, _ = student.predict(texts)
    assert all(r["label"] in ("negative", "positive") for r in results)
    assert 0.0 <= metrics["val/acc"] <= 1.0
    # ... nor does its ONNX export, which predicts what it predicts
    pytest.importorskip("onnxruntime")
    from nlp_lstm.commands.export import export
    from nlp_lstm.deploy import runtime

    export(metrics["checkpoint"], tmp_path / "onnx")
    onnx_results, _ = runtime.load(tmp_path / "onnx", threads=1).predict(texts)
    for a, b in zip(onnx_results, results, strict=True):
        assert a["label"] == b["label"] and a["probs"] == pytest.approx(b["probs"], abs=1e-4)


def test_distillation_with_an_augmented_transfer_set(checkpoint, tmp_path):
    metrics = _run(tmp_path, [f"model.teacher_ckpt={checkpoint}", "model.alpha=0.5",
                              "model.soft_loss=mse",
                              "data._target_=nlp_lstm.sentiment.TransferSetDataModule",
                              "+data.augment._target_=nlp_lstm.sentiment.Augmentation",
                              "+data.augment.copies=1"])
    assert "val/acc" in metrics
    [cache] = (tmp_path / "cache" / "teacher_logits").glob("*.pt")
    assert len(torch.load(cache, weights_only=True)["logits"]) > 540  # 540 labeled + variants


def test_embedding_initialised_from_the_teacher(checkpoint, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("logits computed with alpha=1")

    monkeypatch.setattr("nlp_lstm.sentiment.distill.teacher_logits", refuse)
    # lr 0: the student's embedding stays what it started from
    metrics = _run(tmp_path, [f"model.teacher_ckpt={checkpoint}", "model.alpha=1.0",
                              "model.init_embedding=teacher", "model.optimizer.lr=0.0",
                              "trainer.max_epochs=1"])
    student = load_model(metrics["checkpoint"], "sentiment")
    teacher = load_model(checkpoint, "sentiment")
    assert torch.equal(student.net.embedding.weight, teacher.net.embedding.weight)


def test_gru_student(checkpoint, tmp_path):
    metrics = _run(tmp_path, [f"model.teacher_ckpt={checkpoint}", "encoder=gru"])
    student = load_model(metrics["checkpoint"], "sentiment")
    assert student.net.encoder.cell == "gru" and not student.net.encoder.bidirectional


def test_alpha_one_never_reads_the_teacher(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the teacher was read")

    monkeypatch.setattr("nlp_lstm.sentiment.distill.load_teacher", refuse)
    metrics = _run(tmp_path, [f"model.teacher_ckpt={tmp_path}/no-such.ckpt", "model.alpha=1.0"])
    assert "val/acc" in metrics


# ------------------------------------------------------------------------ configs
def test_distill_and_labels_only_experiments_share_data_student_and_budget(tmp_path):
    distill = compose_train(tmp_path, ["experiment=sst2_distill", "model.teacher_ckpt=t.ckpt"])
    labels = compose_train(tmp_path, ["experiment=sst2_student"])
    assert distill.model.alpha < 1 and labels.model.alpha == 1.0
    assert labels.model.teacher_ckpt is None and labels.data.augment is None
    for key in ("trainer", "data.source", "data.tokenizer", "data.loader.batch_size",
                "model.encoder", "model.embedding_dim", "model.optimizer", "model.scheduler",
                "model.pooling", "model.dropout"):
        assert OmegaConf.select(distill, key) == OmegaConf.select(labels, key), key
    assert distill.trainer.max_steps > 0 and distill.trainer.max_epochs == -1


def test_seqkd_experiment_runs_on_a_file_pair(tmp_path):
    """The recipe's last step, on a small pair standing for sources and the teacher's output."""
    words = ["ein", "hund", "eine", "katze", "läuft", "springt", "im", "park", "schnell"]
    english = {"ein": "a", "hund": "dog", "eine": "a", "katze": "cat", "läuft": "runs",
               "springt": "jumps", "im": "in the", "park": "park", "schnell": "fast"}
    src, tgt = [], []
    for i in range(40):
        sent = [words[(i * 7 + k * 3) % len(words)] for k in range(3 + i % 4)]
        src.append(" ".join(sent))
        tgt.append(" ".join(english[w] for w in sent))
    paths = {}
    for name, lines in (("train.de", src[:32]), ("train.kd.en", tgt[:32]), ("val.de", src[32:]),
                        ("val.en", tgt[32:])):
        paths[name] = tmp_path / name
        paths[name].write_text("\n".join(lines) + "\n")
    cfg = compose_train(tmp_path, [
        "experiment=multi30k_seqkd", "debug=fdr", "trainer.accelerator=cpu",
        f"data.source.train=[{paths['train.de']},{paths['train.kd.en']}]",
        f"data.source.val=[{paths['val.de']},{paths['val.en']}]", "data.tokenizer.vocab_size=300",
        "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"])
    assert cfg.task.name == "translation" and cfg.model.decoder_layers == 1
    assert train(cfg) is None  # fast_dev_run: one batch through everything, no metrics


# ---------------------------------------------------------------------- bad input
TOKENIZER = Tokenizer.train_word_level(["the film was good", "the plot was bad"]).to_json()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": 1.5}, r"model.alpha must be in \[0, 1\]"),
        ({"alpha": -0.1}, r"model.alpha must be in \[0, 1\]"),
        ({"temperature": 0.0}, "model.temperature must be positive"),
        ({"temperature": -2.0}, "model.temperature must be positive"),
        ({"soft_loss": "l1"}, "model.soft_loss must be one of"),
        ({"init_embedding": "glove"}, "model.init_embedding must be one of"),
        ({"teacher_ckpt": None}, "model.teacher_ckpt is needed"),
        ({"teacher_ckpt": None, "alpha": 1.0, "init_embedding": "teacher"},
         "model.teacher_ckpt is needed"),
    ],
)
def test_bad_distillation_settings(kwargs, message):
    args = {"teacher_ckpt": "t.ckpt", "alpha": 0.5, **kwargs}
    with pytest.raises(ValueError, match=message):
        DistilledClassifier(tokenizer=TOKENIZER, labels=["negative", "positive"], **args)


def test_bad_loss_arguments():
    s, t, y = torch.zeros(1, 2), torch.zeros(1, 2), torch.tensor([0])
    with pytest.raises(ValueError, match="alpha"):
        distillation_loss(s, t, y, 2.0, 1.0)
    with pytest.raises(ValueError, match="temperature"):
        distillation_loss(s, t, y, 0.5, 0.0)


@pytest.mark.parametrize(
    "augment",
    [{"copies": -1}, {"p_mask": 1.5}, {"p_ngram": -0.1}, {"p_mask": 0.6, "p_drop": 0.6},
     {"ngram_max": 0}],
)
def test_bad_augmentation(augment):
    with pytest.raises(ValueError, match="augment"):
        Augmentation(**augment)


def _student(teacher: Path, tokenizer: str = TOKENIZER,
             labels: tuple[str, ...] = ("negative", "positive")) -> DistilledClassifier:
    return DistilledClassifier(tokenizer=tokenizer, labels=list(labels), teacher_ckpt=str(teacher),
                               embedding_dim=32)


def test_missing_teacher(tmp_path):
    with pytest.raises(ValueError, match=r"model\.teacher_ckpt: checkpoint not found"):
        _student(tmp_path / "missing.ckpt").load_teacher()


def test_teacher_of_another_task(tmp_path):
    fake = tmp_path / "translator.ckpt"
    torch.save({"nlp_lstm": {"task": "translation", "format": 2}, "state_dict": {}}, fake)
    with pytest.raises(ValueError, match="'translation' checkpoint, expected a 'sentiment'"):
        _student(fake).load_teacher()


def test_teacher_with_another_tokenizer_or_labels(checkpoint):
    teacher = load_model(checkpoint, "sentiment")
    with pytest.raises(ValueError, match="another tokenizer than the data"):
        _student(checkpoint).load_teacher()
    student = _student(checkpoint, teacher.tokenizer.to_json(), ("bad", "good"))
    with pytest.raises(ValueError, match=r"labels \['negative', 'positive'\], the data"):
        student.load_teacher()
    assert _student(checkpoint, teacher.tokenizer.to_json()).load_teacher() is not None


def test_teacher_from_other_data_stops_training(checkpoint, tmp_path):
    with pytest.raises(ValueError, match="another tokenizer than the data"):
        _run(tmp_path, [f"model.teacher_ckpt={checkpoint}", "data.source.num_examples=300"])


def test_embedding_larger_than_the_teachers(checkpoint, tmp_path):
    with pytest.raises(ValueError, match=r"model\.embedding_dim <= 32"):
        _run(tmp_path, [f"model.teacher_ckpt={checkpoint}", "model.init_embedding=teacher",
                        "model.embedding_dim=48"])


def test_smaller_embedding_takes_the_teachers_principal_components(checkpoint):
    teacher = load_model(checkpoint, "sentiment")
    weight = teacher.net.embedding.weight.detach()  # (V, 32)
    small = teacher_embedding(teacher, 8)  # (V, 8)
    assert small.shape == (len(weight), 8) and not small[teacher.tokenizer.pad_id].any()
    # the projection keeps the most variance a rank-8 linear map can: more than any 8 columns
    rows = torch.ones(len(weight), dtype=torch.bool)
    rows[teacher.tokenizer.pad_id] = False
    kept = small[rows].var(0).sum()
    assert kept > weight[rows].var(0).topk(8).values.sum()
    assert kept <= weight[rows].var(0).sum()
    assert torch.equal(teacher_embedding(teacher, 32), weight)


def test_labels_only_on_an_augmented_set_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unlabeled examples"):
        _run(tmp_path, ["model.alpha=1.0",
                        "data._target_=nlp_lstm.sentiment.TransferSetDataModule",
                        "+data.augment._target_=nlp_lstm.sentiment.Augmentation"])
