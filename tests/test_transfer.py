"""Pretrain, transfer, fine-tune (``nlp_lstm.training.transfer``, ``model.init_from``): a tiny
forward
and backward language model pretrained through the real train() on text of the embedded
sentiment corpus, loaded into a bidirectional sentiment model bit for bit, and every bad
``init_from`` input a clear one-line error with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import compose_train

from nlp_lstm.core.cli import bad_input_exits
from nlp_lstm.data.loader import LoaderOptions
from nlp_lstm.drivers.registry import load_model
from nlp_lstm.drivers.train import train
from nlp_lstm.sentiment import SentimentClassifier
from nlp_lstm.sentiment.corpus import generate_sentiment
from nlp_lstm.training.transfer import InitFrom, init_from, read_sources

E, H = 16, 16
LM = ["task=generation", "data=text", "data.tokenizer.kind=word", "data.tokenizer.lowercase=true",
      "data.tokenizer.normalize=review", "data.tokenizer.vocab_size=null",
      "data.loader.batch_size=4", "data.seq_len=16", f"model.embedding_dim={E}",
      f"model.encoder.hidden_size={H}",
      "model.encoder.num_layers=1", "model.attention=none", "model.tie_embeddings=false",
      "model.adaptive_cutoffs=[20]", "trainer.max_steps=3", "trainer.val_check_interval=3",
      "trainer.limit_val_batches=2",
      "trainer.accelerator=cpu", "trainer.enable_progress_bar=false", "test=false"]
CLS = ["data.source.num_examples=200", "data.loader.batch_size=16",
       "data.tokenizer.normalize=review",
       f"model.embedding_dim={E}", f"model.encoder.hidden_size={H}", "model.encoder.num_layers=1",
       "trainer.max_steps=1", "trainer.val_check_interval=1", "trainer.limit_val_batches=1",
       "trainer.accelerator=cpu",
       "trainer.enable_progress_bar=false", "test=false"]


def init(ckpt: Path | list[Path], **options: object) -> str:
    """The ``model.init_from`` override."""
    paths = [ckpt] if isinstance(ckpt, Path) else ckpt
    items = [f"ckpt:[{','.join(repr(str(p)) for p in paths)}]"]
    items += [f"{k}:{json.dumps(v)}" for k, v in options.items()]
    return f"model.init_from={{{','.join(items)}}}"


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Forward and backward language models pretrained a few steps on the corpus's text."""
    root = tmp_path_factory.mktemp("pretrain")
    text = root / "reviews.txt"
    # Web-review style text: the normaliser maps <br /> and "n't" as for IMDB.
    lines = [e.text.replace(" not ", " doesn't ") + "<br /><br />"
             for e in generate_sentiment(300, seed=5)]
    text.write_text("\n".join(lines) + "\n")
    ckpts = {}
    for name, reverse in (("forward", "false"), ("backward", "true")):
        out = root / name
        train(compose_train(out, [*LM, f"data.source.train={text}", f"data.reverse={reverse}"]))
        ckpts[name] = next((out / "checkpoints").glob("best.ckpt"))
    return ckpts


def test_both_directions_load_bit_for_bit_and_the_tokenizer_is_adopted(pretrained, tmp_path):
    spec = InitFrom(ckpt=[str(pretrained["forward"]), str(pretrained["backward"])])
    sources = read_sources(spec)
    forward, backward = (torch.load(pretrained[k], weights_only=True)["state_dict"]
                         for k in ("forward", "backward"))
    lm = load_model(pretrained["forward"])
    # Each language model learnt its own embedding: side by side in an embedding twice as wide,
    # each direction's first-layer input weights reading its own half.
    model = SentimentClassifier(lm.tokenizer.to_json(), ["negative", "positive"],
                                embedding_dim=2 * E,
                                encoder={"hidden_size": H, "bidirectional": True})
    report = init_from(model.net, spec, sources, tokenizer=model.tokenizer)
    encoder = model.net.encoder
    for weight in ("weight_hh", "bias_ih", "bias_hh"):
        assert torch.equal(getattr(encoder, f"{weight}_l0"), forward[f"net.layers.0.{weight}_l0"])
        assert torch.equal(getattr(encoder, f"{weight}_l0_reverse"),
                           backward[f"net.layers.0.{weight}_l0"])
    assert torch.equal(encoder.weight_ih_l0[:, :E], forward["net.layers.0.weight_ih_l0"])
    assert torch.equal(encoder.weight_ih_l0_reverse[:, E:], backward["net.layers.0.weight_ih_l0"])
    assert not encoder.weight_ih_l0[:, E:].any() and not encoder.weight_ih_l0_reverse[:, :E].any()
    assert torch.equal(model.net.embedding.weight[:, :E], forward["net.embedding.weight"])
    assert torch.equal(model.net.embedding.weight[:, E:], backward["net.embedding.weight"])
    assert report.count("loaded") == 9 and report.count("new") == 0
    assert report.count("skipped") == 0
    # As wide as one: the forward embedding, the backward one skipped and the reason noted.
    narrow = SentimentClassifier(lm.tokenizer.to_json(), ["negative", "positive"],
                                 embedding_dim=E, encoder={"hidden_size": H, "bidirectional": True})
    report = init_from(narrow.net, spec, sources)
    assert torch.equal(narrow.net.embedding.weight, forward["net.embedding.weight"])
    assert report.count("skipped") == 1 and "not the one they were trained" in report.notes[0]
    assert {s["sha256"] for s in report.provenance["sources"]} == {
        s.sha256 for s in sources}

    # Through the train command: the data adopts the tokenizer, the report is printed and
    # saved, one step trains, the checkpoint is self-contained and records the provenance.
    out = tmp_path / "finetune"
    train(compose_train(out, [*CLS, init([pretrained["forward"], pretrained["backward"]]),
                              f"model.embedding_dim={2 * E}",
                              "model.layer_lr_decay=2.6"]))
    saved = json.loads((out / "init_report.json").read_text())
    assert sum(r["status"] == "loaded" for r in saved["rows"]) == 9
    ckpt = next((out / "checkpoints").glob("best.ckpt"))
    tuned = load_model(ckpt)
    assert tuned.tokenizer.to_json() == lm.tokenizer.to_json()
    record = torch.load(ckpt, weights_only=True)["nlp_lstm"]["provenance"]
    assert record["modules"] == ["embedding", "encoder"]
    assert record["sources"][1]["reverse"] is True
    assert record["schedule"]["layer_lr_decay"] == 2.6
    for path in pretrained.values():  # the fine-tuned model never reads the LM files again
        path.rename(path.with_suffix(".moved"))
    try:
        assert load_model(ckpt).predict(["a fine film"])[0][0]["label"] in tuned.labels
    finally:
        for path in pretrained.values():
            path.with_suffix(".moved").rename(path)


def test_a_forward_model_alone_fills_the_forward_direction(pretrained):
    spec = InitFrom(ckpt=str(pretrained["forward"]))
    lm = load_model(pretrained["forward"])
    model = SentimentClassifier(lm.tokenizer.to_json(), ["negative", "positive"],
                                embedding_dim=E, encoder={"hidden_size": H, "bidirectional": True})
    before = model.net.encoder.weight_ih_l0_reverse.clone()
    report = init_from(model.net, spec, read_sources(spec))
    assert report.count("loaded") == 5 and report.count("new") == 4
    assert torch.equal(model.net.encoder.weight_ih_l0_reverse, before)
    assert any("forward direction only" in note for note in report.notes)
    assert "new" in report.table() and "weight_ih_l0_reverse" in report.table()


def test_remap_copies_embedding_rows_by_token_string(pretrained, tmp_path):
    out = tmp_path / "remap"
    train(compose_train(out, [*CLS, "data.tokenizer.normalize=nfkc",
                              init(pretrained["forward"], remap=True)]))
    report = json.loads((out / "init_report.json").read_text())
    embedding = next(r for r in report["rows"] if r["name"] == "embedding.weight")
    assert "remapped by token string" in embedding["note"]
    assert any(note.startswith("remap coverage") for note in report["notes"])


def _fails(overrides: list[str], tmp_path: Path, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info, bad_input_exits():
        train(compose_train(tmp_path / "bad", [*CLS, *overrides]))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")
    return err[0]


def test_bad_init_from_inputs_exit_2_with_one_line(pretrained, tmp_path, capsys):
    fwd = pretrained["forward"]
    assert "not found" in _fails([init(tmp_path / "missing.ckpt")], tmp_path, capsys)
    tampered = tmp_path / "tampered.ckpt"
    tampered.write_bytes(fwd.read_bytes()[: fwd.stat().st_size // 2])
    assert "not a readable checkpoint" in _fails([init(tampered)], tmp_path, capsys)
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    assert "not an nlp-lstm checkpoint" in _fails([init(foreign)], tmp_path, capsys)
    assert "nothing in" in _fails([init(fwd, modules=["head"])], tmp_path, capsys)
    line = _fails([init(fwd), "model.encoder.hidden_size=24"],
                  tmp_path, capsys)
    assert "shape" in line and "strict=false" in line
    line = _fails([init(fwd), "data.tokenizer.normalize=nfkc"], tmp_path,
                  capsys)
    assert "tokenizer settings differ" in line and "remap=true" in line
    assert "unknown keys" in _fails([init(fwd, oops=1)], tmp_path, capsys)
    line = _fails([init([fwd, fwd])], tmp_path, capsys)
    assert "both hold" in line


def test_a_shape_mismatch_without_strict_is_skipped_and_reported(pretrained, tmp_path):
    out = tmp_path / "loose"
    train(compose_train(out, [*CLS, init(pretrained["forward"], strict=False),
                              "model.encoder.hidden_size=24"]))
    report = json.loads((out / "init_report.json").read_text())
    statuses = {r["name"]: r["status"] for r in report["rows"]}
    assert statuses["embedding.weight"] == "loaded"
    assert statuses["encoder.weight_ih_l0"] == "skipped"


def test_frozen_features_train_only_the_head(pretrained, tmp_path):
    lm = load_model(pretrained["forward"])
    model = SentimentClassifier(lm.tokenizer.to_json(), ["negative", "positive"],
                                embedding_dim=E, encoder={"hidden_size": H, "bidirectional": True},
                                freeze=["embedding", "encoder"],
                                optimizer=lambda params: torch.optim.AdamW(params, lr=0.1))
    trainable = {id(p) for p in model.parameter_groups()}
    assert trainable == {id(p) for p in (*model.net.head.parameters(),
                                         *model.net.pooling.parameters())}
    before = {k: v.clone() for k, v in model.net.state_dict().items()}
    optimizer = model.configure_optimizers()
    model.train()
    assert not model.net.encoder.training and model.net.head.training
    tokens = torch.tensor([[5, 6, 7], [8, 9, 4]])
    loss = model(tokens, torch.tensor([3, 2])).logsumexp(-1).mean()
    loss.backward()
    optimizer.step()
    after = model.net.state_dict()
    assert torch.equal(after["embedding.weight"], before["embedding.weight"])
    assert torch.equal(after["encoder.weight_hh_l0"], before["encoder.weight_hh_l0"])
    assert not torch.equal(after["head.weight"], before["head.weight"])
    with pytest.raises(ValueError, match="unknown modules"):
        model.freeze(["decoder"])


def test_lm_fine_tuning_on_target_text_starts_from_the_pretrained_lm(pretrained, tmp_path):
    """ULMFiT's second stage: the language model, output layer included, continues on the
    target task's text (here a different file) with the pretrained tokenizer."""
    text = tmp_path / "target.txt"
    text.write_text("\n".join(e.text for e in generate_sentiment(80, seed=9)) + "\n")
    out = tmp_path / "lm_finetune"
    train(compose_train(out, [*LM, f"data.source.train={text}",
                              init(pretrained["forward"],
                                   modules=["embedding", "encoder", "decoder"])]))
    report = json.loads((out / "init_report.json").read_text())
    assert {r["status"] for r in report["rows"]} == {"loaded"}
    assert any(r["name"].startswith("decoder.") for r in report["rows"])
    tuned = load_model(next((out / "checkpoints").glob("best.ckpt")))
    assert tuned.tokenizer.to_json() == load_model(pretrained["forward"]).tokenizer.to_json()


def test_review_normaliser_reconciles_web_reviews_with_sst2():
    from nlp_lstm.data.tokenizer import TokenizerTrainer

    tokenizer = TokenizerTrainer(normalize="review").train(["it does n't work -lrb- ok -rrb-"])
    assert (tokenizer.tokenize("It DOESN'T work<br /><br />(ok)")
            == tokenizer.tokenize("it does n't work -lrb- ok -rrb-"))
    with pytest.raises(ValueError, match="normalize"):
        TokenizerTrainer(normalize="html")


def test_a_fixed_training_subset_is_the_same_for_every_seed(tmp_path):
    from nlp_lstm.sentiment import SentimentDataModule
    from nlp_lstm.sentiment.corpus import SyntheticSentiment

    subsets = [SentimentDataModule(SyntheticSentiment(300),
                                   loader=LoaderOptions(train_examples=50, seed=seed))
               ._examples("train") for seed in (1, 2)]
    assert len(subsets[0]) == 50 and subsets[0] == subsets[1]
    with pytest.raises(ValueError, match="train_examples"):
        SentimentDataModule(SyntheticSentiment(300), loader=LoaderOptions(train_examples=0))
