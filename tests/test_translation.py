"""The translation task end to end: training through train(), sacreBLEU metrics, the eval and
translate commands, every bad input, DDP and bf16."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT, compose_train

from nlp_lstm.core.cli import compose_config
from nlp_lstm.data import Tokenizer
from nlp_lstm.data.batching import pad_sequences
from nlp_lstm.drivers.evaluate import evaluate
from nlp_lstm.drivers.train import train
from nlp_lstm.translation import Seq2SeqTranslator
from nlp_lstm.translation.module import corpus_scores

QUIET = ["trainer.accelerator=cpu", "trainer.enable_progress_bar=false",
         "trainer.enable_model_summary=false"]
TINY = ["task=translation", "data.source.num_examples=300", "data.loader.batch_size=32",
        "model.embedding_dim=16", "model.hidden_size=32", "model.encoder.hidden_size=16",
        "model.encoder.num_layers=1", "model.decoder_layers=1", "trainer.max_epochs=1",
        "beam_size=2", *QUIET]


def run_module(module: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=180,
                          env={**os.environ, "NLP_LSTM_DEBUG": ""})


@pytest.fixture(scope="session")
def translation_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("translation")
    train(compose_train(out, TINY))
    return out


@pytest.fixture(scope="session")
def translation_ckpt(translation_run: Path) -> Path:
    return Path(json.loads((translation_run / "metrics.json").read_text())["checkpoint"])


def test_training_reports_sacrebleu_metrics(translation_run: Path) -> None:
    metrics = json.loads((translation_run / "metrics.json").read_text())
    for split in ("val", "test"):
        for name in ("bleu", "chrf", "loss", "ppl"):
            assert isinstance(metrics[f"{split}/{name}"], float), (split, name)
        assert metrics[f"{split}/ppl"] == pytest.approx(torch.tensor(
            metrics[f"{split}/loss"]).exp().item(), rel=1e-4)
    assert metrics["test/bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|")
    raw = torch.load(translation_run / "checkpoints" / "best.ckpt", weights_only=True)
    assert raw["nlp_lstm"]["task"] == "translation"
    assert raw["hyper_parameters"]["target_tokenizer"] is None  # a joint vocabulary


def test_corpus_scores_are_sacrebleus() -> None:
    refs = ["The cat sat on the mat.", "A dog runs in the park."]
    assert corpus_scores(refs, refs)["bleu"] == pytest.approx(100.0)
    scores = corpus_scores(["the cat sat on the mat.", "A dog runs."], refs)
    assert 0.0 < scores["bleu"] < 100.0 and 0.0 < scores["chrf"] < 100.0  # cased, partial


def test_a_tiny_model_overfits_a_handful_of_pairs_to_bleu_100() -> None:
    torch.manual_seed(0)
    pairs = [("the red cat sleeps .", "die rote Katze schläft ."),
             ("a big dog runs .", "ein großer Hund läuft ."),
             ("the small bird sings .", "der kleine Vogel singt ."),
             ("a green frog jumps .", "ein grüner Frosch springt ."),
             ("the old man reads .", "der alte Mann liest ."),
             ("a young girl laughs .", "ein junges Mädchen lacht .")]
    tok = Tokenizer.train_word_level([t for pair in pairs for t in pair], lowercase=False)
    model = Seq2SeqTranslator(tok.to_json(), embedding_dim=32, hidden_size=64,
                              encoder={"hidden_size": 32, "num_layers": 1}, decoder_layers=1,
                              dropout=0.0, label_smoothing=0.0, beam_size=3)
    src, src_lengths = pad_sequences([tok.encode(s) for s, _ in pairs], tok.pad_id)
    framed = [[tok.bos_id, *tok.encode(t), tok.eos_id] for _, t in pairs]
    tgt_in, tgt_lengths = pad_sequences([f[:-1] for f in framed], tok.pad_id)
    tgt_out, _ = pad_sequences([f[1:] for f in framed], tok.pad_id)
    batch = {"src": src, "src_lengths": src_lengths, "tgt_in": tgt_in, "tgt_out": tgt_out,
             "tgt_lengths": tgt_lengths}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(150):
        optimizer.zero_grad()
        logits, gold = model._real_logits(batch)
        torch.nn.functional.cross_entropy(logits, gold).backward()
        optimizer.step()
    sources, references = [s for s, _ in pairs], [t for _, t in pairs]
    for beam in (1, 3):
        results, _ = model.translate(sources, beam_size=beam)
        hypotheses = [r[0]["translation"] for r in results]
        assert corpus_scores(hypotheses, references)["bleu"] == pytest.approx(100.0), hypotheses


def test_eval_command_metrics_signature_and_hypotheses(translation_ckpt: Path,
                                                        tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    proc = run_module("tasks.translation.eval", f"ckpt_path={translation_ckpt}",
                      "data.source.num_examples=300", "split=val", "beam_size=3",
                      f"output={out}", "accelerator=cpu")
    assert proc.returncode == 0, proc.stderr[-2000:]
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("val/bleu", "val/chrf", "val/loss", "examples", "seconds",
                "examples_per_second"):
        assert key in last, key
    assert "sacreBLEU bleu signature: nrefs:1|case:mixed" in proc.stdout
    assert last["examples"] == 30 and json.loads(out.read_text()) == last
    hypotheses = Path(last["outputs"]).read_text(encoding="utf-8").splitlines()
    assert len(hypotheses) == 30


def test_beam_search_in_the_final_evaluation_and_greedy_while_fitting(
    translation_ckpt: Path, tmp_path: Path
) -> None:
    cfg = compose_config("eval", ["task=translation", f"ckpt_path={translation_ckpt}",
                                  "data.source.num_examples=300", "split=val", "beam_size=1",
                                  f"output={tmp_path / 'g.json'}", "accelerator=cpu"])
    greedy = evaluate(cfg)
    cfg.beam_size, cfg.output = 4, str(tmp_path / "b.json")
    beam = evaluate(cfg)
    assert greedy["val/loss"] == pytest.approx(beam["val/loss"])  # same model, same data
    assert greedy["outputs"] != beam["outputs"]


def test_translate_keeps_line_alignment_with_empty_lines(translation_ckpt: Path,
                                                         tmp_path: Path) -> None:
    proc = run_module("tasks.translation.translate", "--ckpt", str(translation_ckpt),
                      "--input", "-", "--n-best", "2", "--beam-size", "3", "--attention-png",
                      str(tmp_path / "png"), stdin="The dog sees the cat.\n\nA man sleeps.\n")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["source"] for r in rows] == ["The dog sees the cat.", "", "A man sleeps."]
    assert rows[1]["translation"] == "" and rows[1]["nbest"] == []
    for row in (rows[0], rows[2]):
        assert len(row["nbest"]) == 2 and row["nbest"][0]["score"] >= row["nbest"][1]["score"]
        assert row["translation"] == row["nbest"][0]["translation"]
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == ["0001.png", "0003.png"]


def test_translate_cuts_over_long_sources_and_says_so(translation_ckpt: Path) -> None:
    proc = run_module("tasks.translation.translate", "--ckpt", str(translation_ckpt),
                      "the dog " * 400)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(proc.stdout.splitlines()) == 1
    assert "note: 1 source(s) longer than 64 tokens were cut" in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ckpt", "{sentiment}", "hi"], "is a 'sentiment' checkpoint, expected a 'translation'"),
        (["--ckpt", "{ckpt}", ""], "argument 1 is empty"),
        (["--ckpt", "{ckpt}"], "no input"),
        (["--ckpt", "{ckpt}", "--input", "{tmp}/missing.txt"], "input file not found"),
        (["--ckpt", "{ckpt}", "--input", "{empty}"], "is empty"),
        (["--ckpt", "{ckpt}", "--input", "{binary}"], "not valid UTF-8"),
        (["--ckpt", "{ckpt}", "--beam-size", "0", "hi"], "beam_size must be an integer >= 1"),
        (["--ckpt", "{ckpt}", "--beam-size", "2", "--n-best", "3", "hi"],
         "n_best must be between 1 and beam_size=2"),
    ],
)
def test_translate_bad_input_exits_2(args, message, translation_ckpt, checkpoint, tmp_path):
    (tmp_path / "empty.txt").write_text("\n\n")
    (tmp_path / "binary.txt").write_bytes(b"ok\n\xff\n")
    args = [a.format(ckpt=translation_ckpt, sentiment=checkpoint, tmp=tmp_path,
                     empty=tmp_path / "empty.txt", binary=tmp_path / "binary.txt") for a in args]
    proc = run_module("tasks.translation.translate", *args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.slow  # ~35 s; DDP's mechanism is covered in CI by tests/test_scale.py
def test_ddp_cpu_translation(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "train.py", *TINY, "trainer=ddp_cpu", "debug=limit",
         f"hydra.run.dir={run}", f"paths.cache_dir={tmp_path}/cache"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NLP_LSTM_DEBUG": ""})
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["val/bleu"] <= 100.0 and metrics["val/loss"] > 0


def test_bf16_mixed_translation(tmp_path: Path) -> None:
    train(compose_train(tmp_path, [*TINY, "trainer.precision=bf16-mixed", "debug=limit"]))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["val/loss"] > 0 and 0.0 <= metrics["val/bleu"] <= 100.0
