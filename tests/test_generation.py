"""The generation task end to end: the LanguageModel's carried stream state, its metrics (loss,
perplexity, bits per character, the probe), sampling from a checkpoint, the eval and generate
commands with every bad input, DDP and bf16."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT, compose_train

from nlp_lstm.commands.generate import main as generate_main
from nlp_lstm.core.cli import compose_config
from nlp_lstm.data import Tokenizer
from nlp_lstm.data.loader import LoaderOptions
from nlp_lstm.drivers.evaluate import evaluate
from nlp_lstm.drivers.train import train
from nlp_lstm.generation import GenerationDataModule, LanguageModel, SyntheticText
from nlp_lstm.generation.corpus import generate_stories
from nlp_lstm.generation.data import StreamChunks
from nlp_lstm.generation.module import TextStream

QUIET = ["trainer.accelerator=cpu", "trainer.enable_progress_bar=false",
         "trainer.enable_model_summary=false"]
TINY = ["task=generation", "data.source.num_documents=120", "data.loader.batch_size=8",
        "data.seq_len=32", "model.embedding_dim=16", "model.encoder.hidden_size=24",
        "model.attention_window=16", "model.scheduler.warmup_steps=2", "trainer.max_epochs=1",
        *QUIET]
TEXT = "the cat sat on the mat. the dog sat on the log. " * 4


def run_module(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=180, env={**os.environ, "NLP_LSTM_DEBUG": ""})


def tiny_model(attention: str = "window", **kwargs) -> LanguageModel:
    torch.manual_seed(0)
    tok = Tokenizer.train_char([TEXT])
    return LanguageModel(tok.to_json(), embedding_dim=12, attention=attention,
                         attention_window=5, encoder={"hidden_size": 16, "num_layers": 2},
                         **kwargs).eval()


@pytest.fixture(scope="session")
def generation_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("generation")
    train(compose_train(out, TINY))
    return out


@pytest.fixture(scope="session")
def generation_ckpt(generation_run: Path) -> Path:
    return Path(json.loads((generation_run / "metrics.json").read_text())["checkpoint"])


# ------------------------------------------------------------------ training
def test_training_reports_loss_ppl_bpc_and_probe(generation_run: Path) -> None:
    metrics = json.loads((generation_run / "metrics.json").read_text())
    for split in ("val", "test"):
        loss = metrics[f"{split}/loss"]
        assert 0.0 < loss < math.log(80)
        assert metrics[f"{split}/ppl"] == pytest.approx(math.exp(loss), rel=1e-5)
        # A character model: one token per character, so bpc is the loss in bits.
        assert metrics[f"{split}/bpc"] == pytest.approx(loss / math.log(2), rel=1e-5)
        assert 0.0 <= metrics[f"{split}/probe"] <= 1.0
    raw = torch.load(generation_run / "checkpoints" / "best.ckpt", weights_only=True)
    assert raw["nlp_lstm"]["task"] == "generation"
    assert raw["hyper_parameters"]["separator"] == "\n\n"


@pytest.mark.parametrize("attention", ["none", "window"])
def test_stream_state_carried_between_batches_equals_one_long_sequence(attention, one_thread):
    model = tiny_model(attention)
    ids = torch.tensor(Tokenizer.from_json(model.hparams.tokenizer).encode(TEXT))
    chunks = StreamChunks(ids, None, 1.0, batch_size=2, seq_len=7)
    model.on_validation_epoch_start()
    with torch.no_grad():
        carried = torch.cat([model.net.output(model._forward(chunks[k], "val"))
                             for k in range(len(chunks))], dim=1)  # (2, N, V)
        whole, _ = model.net(chunks.ids.streams[:, :-1])  # (2, N, V), one call
    torch.testing.assert_close(carried, whole, rtol=1e-5, atol=1e-5)
    # A new epoch starts a new text: the first batch no longer continues the last one.
    model.on_validation_epoch_start()
    with torch.no_grad():
        again = model.net.output(model._forward(chunks[0], "val"))
    torch.testing.assert_close(again, whole[:, :7], rtol=1e-5, atol=1e-5)


def test_training_state_is_reset_at_each_epoch_start():
    model = tiny_model()
    ids = torch.tensor(model.tokenizer.encode(TEXT))
    batch = StreamChunks(ids, None, 1.0, batch_size=2, seq_len=7)[0]
    model.on_train_epoch_start()
    with torch.no_grad():
        first = model._forward(batch, "train")
        continued = model._forward(batch, "train")
        model.on_train_epoch_start()
        restarted = model._forward(batch, "train")
    assert not torch.allclose(first, continued)
    torch.testing.assert_close(first, restarted)
    assert model._states["train"].h.grad_fn is None  # detached: truncated BPTT


def _metrics(model: LanguageModel, dm: GenerationDataModule) -> dict[str, float]:
    import pytorch_lightning as pl

    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False,
                         enable_model_summary=False)
    return trainer.validate(model, dataloaders=dm.dataloader("val"), verbose=False)[0]


@pytest.mark.parametrize(("kind", "mode"), [("char", "stream"), ("bpe", "stream"),
                                            ("char", "sentences")])
def test_bits_per_character_is_total_nats_over_characters(kind, mode, one_thread, tmp_path):
    """bpc = (sum of -ln p over predicted tokens) / (characters they stand for) / ln 2."""
    from nlp_lstm.data import TokenizerTrainer

    dm = GenerationDataModule(SyntheticText(60), TokenizerTrainer(kind, False, 1, 300),
                              mode=mode,
                              loader=LoaderOptions(batch_size=4), seq_len=16, cache_dir=None)
    dm.setup()
    torch.manual_seed(0)
    model = LanguageModel(dm.tokenizer.to_json(), dm.separator, embedding_dim=8,
                          encoder={"hidden_size": 8}).eval()
    metrics = _metrics(model, dm)
    nats = tokens = characters = 0.0
    model._states.clear()
    with torch.no_grad():
        for batch in dm.dataloader("val"):
            logits = model.net.output(model._forward(batch, "by hand"))
            real = batch["target"] != dm.tokenizer.pad_id
            nll = F.cross_entropy(logits.transpose(1, 2), batch["target"], reduction="none")
            nats += float(nll[real].sum())
            tokens += float(real.sum())
            characters += float(batch["characters"])
    assert metrics["val/loss"] == pytest.approx(nats / tokens, rel=1e-5)
    assert metrics["val/bpc"] == pytest.approx(nats / characters / math.log(2), rel=1e-5)
    docs = dm._examples("val")
    split_chars = sum(map(len, docs)) + len(dm.separator) * (len(docs) - 1)
    served = dm.stream("val").numel() if mode == "stream" else sum(map(len, dm.sentences("val")))
    # The characters behind the predicted tokens: all of them but what streams leave out.
    assert characters == pytest.approx(tokens * split_chars / served, rel=1e-6)
    if kind == "char" and mode == "stream":
        assert characters == tokens  # one character per token
    if kind == "bpe":
        assert characters > 1.5 * tokens  # a BPE token stands for several characters


def test_probe_marks_the_closing_names_colors_items_and_places():
    dm = GenerationDataModule(SyntheticText(50),
                              loader=LoaderOptions(batch_size=2), seq_len=64, cache_dir=None)
    dm.setup()
    stories = generate_stories(50)
    val_texts = dm._examples("val")
    story = next(s for s in stories if s.text == val_texts[0])
    mask = dm.probe_masks("val")[0]
    marked = "".join(ch for ch, m in zip(val_texts[0], mask, strict=True) if m)
    assert marked == story.name + story.color + story.item + story.place
    assert val_texts[0].rindex("\n") < mask.index(True)  # all in the closing line
    stream = dm.stream("val")
    probe = dm.probe_stream("val")
    assert probe.shape == stream.shape
    assert dm.tokenizer.decode(stream[probe][: len(marked)].tolist()) == marked
    # Word and BPE tokenizers have no one-token-per-character alignment: no probe.
    from nlp_lstm.data import TokenizerTrainer

    words = GenerationDataModule(SyntheticText(50), TokenizerTrainer("word"),
                                 loader=LoaderOptions(batch_size=2),
                                 cache_dir=None)
    words.setup()
    assert words.probe_masks("val") is None
    assert "probe" not in next(iter(words.dataloader("val")))


def test_probe_metric_is_the_accuracy_on_marked_tokens(one_thread):
    dm = GenerationDataModule(SyntheticText(60),
                              loader=LoaderOptions(batch_size=4), seq_len=32, cache_dir=None)
    dm.setup()
    torch.manual_seed(0)
    model = LanguageModel(dm.tokenizer.to_json(), dm.separator, embedding_dim=8,
                          encoder={"hidden_size": 8}).eval()
    metrics = _metrics(model, dm)
    correct = total = 0
    model._states.clear()
    with torch.no_grad():
        for batch in dm.dataloader("val"):
            hit = model.net.output(model._forward(batch, "by hand")).argmax(-1) == batch["target"]
            correct += int((hit & batch["probe"]).sum())
            total += int(batch["probe"].sum())
    assert total > 50
    assert metrics["val/probe"] == pytest.approx(correct / total)


# ----------------------------------------------------------------- sampling
def test_seed_makes_samples_reproducible_and_top_k_1_is_greedy(one_thread):
    model = tiny_model()
    a = model.generate("the ", max_new_tokens=30, seed=3, num_samples=3)
    b = model.generate("the ", max_new_tokens=30, seed=3, num_samples=3)
    c = model.generate("the ", max_new_tokens=30, seed=4, num_samples=3)
    assert [s["text"] for s in a] == [s["text"] for s in b]
    assert [s["text"] for s in a] != [s["text"] for s in c]
    greedy = model.generate("the ", max_new_tokens=30, temperature=0.0)[0]["text"]
    top1 = model.generate("the ", max_new_tokens=30, temperature=1.3, top_k=1, seed=5)
    assert top1[0]["text"] == greedy


def test_generation_reads_the_prompt_once_then_steps(one_thread):
    """Greedy generation equals picking the argmax of teacher-forced logits over the prompt
    and everything generated so far, run from scratch each time."""
    model = tiny_model()
    prompt = "the dog "
    text = model.generate(prompt, max_new_tokens=12, temperature=0.0)[0]["text"]
    ids = model.tokenizer.encode(prompt)
    for _ in range(12):
        with torch.no_grad():
            logits, _ = model.net(torch.tensor([ids]))
        ids.append(int(logits[0, -1].argmax()))
    assert model.tokenizer.decode(ids[len(model.tokenizer.encode(prompt)):]) == text


def test_text_stream_holds_back_possible_stop_strings():
    tok = Tokenizer.train_char(["ab\ncd"])
    stream = TextStream(tok, stop=["\n\n"])
    pieces = [stream.push(i) for i in tok.encode("ab\nc")]
    assert pieces == ["a", "b", "", "\nc"]  # the lone newline waited for the next character
    stream = TextStream(tok, stop=["\n\n"])
    pieces = [stream.push(i) for i in tok.encode("ab\n\ncd")]
    assert "".join(pieces) == stream.text == "ab" and stream.done and stream.tokens == 4
    stream = TextStream(tok)
    assert [stream.push(i) for i in [*tok.encode("ab"), tok.eos_id, *tok.encode("c")]] == [
        "a", "b", "", ""]
    assert stream.done and stream.tokens == 3


def test_stop_strings_end_samples(one_thread):
    model = tiny_model()
    full = model.generate("the ", max_new_tokens=40, temperature=0.0)[0]
    stop = full["text"][5:7]
    cut = model.generate("the ", max_new_tokens=40, temperature=0.0, stop=[stop])[0]
    assert cut["text"] == full["text"][: full["text"].index(stop)]
    assert cut["tokens"] < full["tokens"] == 40


def test_long_prompts_keep_their_end():
    model = tiny_model(max_length=10)
    ids, cut = model.encode_prompt(TEXT)
    assert cut == len(TEXT) - 10 and model.tokenizer.decode(ids) == TEXT[-10:]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prompt": "the cat Ω€"}, "characters the model never saw in training: 'Ω', '€'"),
        ({"temperature": -0.5}, "temperature must be >= 0"),
        ({"temperature": 0.0, "top_k": 5}, "temperature=0 is greedy decoding"),
        ({"top_p": 0.0}, "top_p must be in (0, 1]"),
        ({"top_p": 1.5}, "top_p must be in (0, 1]"),
        ({"top_k": -1}, "top_k must be an integer >= 0"),
        ({"repetition_penalty": 0.0}, "repetition_penalty must be > 0"),
        ({"num_samples": 0}, "num_samples must be a positive integer"),
        ({"max_new_tokens": -1}, "max_new_tokens must be an integer >= 0"),
        ({"stop": [""]}, "stop strings must be non-empty"),
    ],
)
def test_bad_generation_arguments_raise_before_any_work(kwargs, message):
    model = tiny_model()
    with pytest.raises(ValueError, match=re.escape(message)):
        model.start_generation(**{"prompt": "the ", **kwargs})


# ----------------------------------------------------------------- commands
def test_generate_prints_one_json_object_per_sample(generation_ckpt, capsys):
    generate_main(["--ckpt", str(generation_ckpt), "--prompt", "Kira", "--num-samples", "3",
                   "--max-new-tokens", "20", "--seed", "0", "--top-k", "10", "--top-p", "0.9",
                   "--repetition-penalty", "1.2"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 3
    for row in rows:
        assert row.keys() == {"prompt", "text", "tokens", "seconds"}
        assert row["prompt"] == "Kira" and 0 < row["tokens"] <= 20 and row["seconds"] > 0


def test_generate_stream_writes_the_text_as_it_comes(generation_ckpt, capsys):
    generate_main(["--ckpt", str(generation_ckpt), "--prompt", "Kira", "--stream",
                   "--max-new-tokens", "15", "--temperature", "0"])
    streamed = capsys.readouterr().out
    generate_main(["--ckpt", str(generation_ckpt), "--prompt", "Kira", "--max-new-tokens", "15",
                   "--temperature", "0"])
    row = json.loads(capsys.readouterr().out)
    assert streamed == "Kira" + row["text"] + "\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prompt", "Kira ☃"], "characters the model never saw in training: '☃'"),
        (["--temperature", "-1"], "temperature must be >= 0"),
        (["--temperature", "0", "--top-p", "0.5"], "temperature=0 is greedy decoding"),
        (["--top-p", "0"], "top_p must be in (0, 1]"),
        (["--top-p", "1.01"], "top_p must be in (0, 1]"),
        (["--top-k", "-3"], "top_k must be an integer >= 0"),
        (["--stream", "--num-samples", "2"], "--stream prints one sample"),
        (["--num-samples", "0"], "num_samples must be a positive integer"),
    ],
)
def test_generate_bad_input_exits_2(args, message, generation_ckpt, capsys):
    with pytest.raises(SystemExit) as exit_info:
        generate_main(["--ckpt", str(generation_ckpt), *args])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ") and message in captured.err
    assert captured.err.count("\n") == 1


def test_generate_refuses_a_checkpoint_of_another_task(checkpoint, capsys):
    with pytest.raises(SystemExit) as exit_info:
        generate_main(["--ckpt", str(checkpoint)])
    assert exit_info.value.code == 2
    assert "is a 'sentiment' checkpoint, expected a 'generation' one" in capsys.readouterr().err


def test_eval_command_prints_loss_ppl_bpc_json(generation_ckpt, generation_run, tmp_path,
                                               capsys):
    cfg = compose_config("eval", ["task=generation", f"ckpt_path={generation_ckpt}",
                                  "split=val", f"output={tmp_path}/m.json",
                                  "data.source.num_documents=120", "data.loader.batch_size=8",
                                  "data.seq_len=32", "accelerator=cpu"])
    metrics = evaluate(cfg)
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last == metrics == json.loads((tmp_path / "m.json").read_text())
    # Streams count predicted tokens: 8 streams, each of them all but its last token.
    docs = GenerationDataModule(SyntheticText(120), cache_dir=None)._examples("val")
    characters = sum(map(len, docs)) + 2 * (len(docs) - 1)
    assert metrics["tokens"] == 8 * (characters // 8 - 1)
    assert metrics["tokens_per_second"] > 0 and "examples" not in metrics
    trained = json.loads((generation_run / "metrics.json").read_text())
    for name in ("loss", "ppl", "bpc", "probe"):
        assert metrics[f"val/{name}"] == pytest.approx(trained[f"val/{name}"], rel=1e-5)


def test_eval_and_generate_from_the_command_line(generation_ckpt, checkpoint, tmp_path):
    proc = run_module("tasks.generation.eval", f"ckpt_path={generation_ckpt}", "split=test",
                      f"output={tmp_path}/e.json", "data.source.num_documents=120",
                      "accelerator=cpu")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert {"test/loss", "test/ppl", "test/bpc"} <= json.loads(proc.stdout.splitlines()[-1]).keys()
    proc = run_module("tasks.generation.eval", f"ckpt_path={checkpoint}", "split=test",
                      f"output={tmp_path}/x.json")
    assert proc.returncode == 2 and proc.stderr.startswith("error: ")
    assert "Traceback" not in proc.stderr
    proc = run_module("tasks.generation.generate", "--ckpt", str(generation_ckpt),
                      "--max-new-tokens", "5", "--seed", "1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["tokens"] <= 5


# ---------------------------------------------------------------- at scale
@pytest.mark.slow  # ~45 s; DDP's mechanism is covered in CI by tests/test_scale.py
def test_ddp_cpu_generation(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "train.py", *TINY, "trainer=ddp_cpu", "debug=limit",
         f"hydra.run.dir={run}", f"paths.cache_dir={tmp_path}/cache"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NLP_LSTM_DEBUG": ""})
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["val/loss"] > 0 and 0.0 <= metrics["val/probe"] <= 1.0


@pytest.mark.slow  # ~60 s; tests/test_scale.py checks the same for sentiment in CI
def test_ddp_validation_equals_single_process(generation_ckpt, tmp_path):
    """Each rank reads its own streams; the summed nats, tokens and characters make the
    metrics of all streams together, which one process with both ranks' streams gives too."""
    import textwrap

    script = tmp_path / "validate.py"
    script.write_text(textwrap.dedent(f"""
        import json, sys
        import pytorch_lightning as pl
        from nlp_lstm.drivers.registry import load_model
        from nlp_lstm.generation import GenerationDataModule, SyntheticText
        model = load_model({str(generation_ckpt)!r}, task="generation")
        devices = int(sys.argv[1])
        dm = GenerationDataModule(SyntheticText(120), batch_size=8 // devices, seq_len=32,
                                  cache_dir=None, trained_tokenizer=model.tokenizer.to_json())
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
    assert single.keys() == ddp.keys() == {"val/loss", "val/ppl", "val/bpc", "val/probe"}
    for key in single:
        assert ddp[key] == pytest.approx(single[key], rel=1e-5), key


@pytest.mark.parametrize("attention", ["none", "window"])
def test_bf16_mixed_generation(attention, tmp_path: Path) -> None:
    train(compose_train(tmp_path, [*TINY, f"model.attention={attention}",
                                   "trainer.precision=bf16-mixed", "debug=limit"]))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert 0 < metrics["val/loss"] < 10


@pytest.mark.parametrize("kind", ["char", "word", "bpe"])
def test_text_stream_pieces_add_up_to_the_decoded_text(kind):
    from nlp_lstm.data import TokenizerTrainer

    text = "Größe, über Maß! Ein Café... \\o/ naïve — test.\nZweite Zeile: 42 Äpfel."
    tok = TokenizerTrainer(kind, False, 1, 300).train([text])
    ids = tok.encode(text)
    stream = TextStream(tok)
    pieces = [stream.push(i) for i in ids] + [stream.finish()]
    assert "".join(pieces) == stream.text == tok.decode(ids)
    assert stream.tokens == len(ids)
