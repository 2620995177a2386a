"""ONNX export and the torch-free runtime: every graph passes onnx.checker, the runtime gives
the PyTorch path's answers (sentiment probabilities, greedy and beam translations, greedy
generation), imports no torch, decodes and samples by the same rules, int8 quantization
shrinks the graphs, the commands and the server take --onnx, bad inputs exit 2 with one line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from conftest import ROOT, compose_train, serving
from test_serve import without_seconds

from nlp_lstm import __version__
from nlp_lstm.commands.export import export
from nlp_lstm.commands.export import main as export_main
from nlp_lstm.commands.generate import main as generate_main
from nlp_lstm.commands.predict import main as predict_main
from nlp_lstm.commands.serve import OnnxBackend
from nlp_lstm.commands.serve import main as serve_main
from nlp_lstm.commands.translate import main as translate_main
from nlp_lstm.data.tokenizer import Tokenizer
from nlp_lstm.deploy import runtime
from nlp_lstm.deploy.quantize import quantize_model
from nlp_lstm.deploy.runtime import decoding as np_decoding
from nlp_lstm.drivers.registry import load_model
from nlp_lstm.drivers.train import train
from nlp_lstm.generation import LanguageModel
from nlp_lstm.nn import LSTMEncoder
from nlp_lstm.nn import decoding as torch_decoding
from nlp_lstm.nn.native import NativeEncoder
from nlp_lstm.sentiment import BagOfWordsClassifier, SentimentClassifier
from nlp_lstm.sentiment.corpus import SyntheticSentiment
from nlp_lstm.training.module import CHECKPOINT_FORMAT
from nlp_lstm.translation import Seq2SeqTranslator
from nlp_lstm.translation.corpus import SyntheticTranslation

QUIET = ["trainer.accelerator=cpu", "trainer.enable_progress_bar=false",
         "trainer.enable_model_summary=false"]
# Trained enough (10 s) that its next-token distributions are not flat: a model at chance has
# near-ties that float rounding decides either way, in PyTorch as in onnxruntime.
TRANSLATION = ["task=translation", "data.source.num_examples=1500", "data.loader.batch_size=32",
               "model.embedding_dim=32", "model.hidden_size=64", "model.encoder.hidden_size=32",
               "model.encoder.num_layers=1", "model.decoder_layers=1", "model.dropout=0.1",
               "model.optimizer.lr=0.01", "trainer.max_epochs=4", "beam_size=5", *QUIET]
GENERATION = ["task=generation", "data.source.num_documents=120", "data.loader.batch_size=8",
              "data.seq_len=32", "model.embedding_dim=16", "model.encoder.hidden_size=24",
              "model.attention_window=16", "model.scheduler.warmup_steps=2",
              "trainer.max_epochs=1", *QUIET]


def trained(tmp_path_factory: pytest.TempPathFactory, name: str, overrides: list[str]) -> Path:
    out = tmp_path_factory.mktemp(name)
    train(compose_train(out, overrides))
    return Path(json.loads((out / "metrics.json").read_text())["checkpoint"])


def exported(tmp_path_factory: pytest.TempPathFactory, ckpt: Path, name: str,
             quantize: str | None = None) -> Path:
    out = tmp_path_factory.mktemp(name)
    export(ckpt, out, quantize=quantize)
    return out


@pytest.fixture(scope="module")
def translation_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained(tmp_path_factory, "export_translation", TRANSLATION)


@pytest.fixture(scope="module", params=["none", "window"])
def lm_ckpt(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained(tmp_path_factory, f"export_lm_{request.param}",
                   [*GENERATION, f"model.attention={request.param}"])


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory, checkpoint: Path,
            translation_ckpt: Path) -> dict[str, Path]:
    return {"sentiment": exported(tmp_path_factory, checkpoint, "x_sentiment"),
            "translation": exported(tmp_path_factory, translation_ckpt, "x_translation")}


@pytest.fixture(scope="module")
def lm_export(tmp_path_factory: pytest.TempPathFactory, lm_ckpt: Path) -> Path:
    return exported(tmp_path_factory, lm_ckpt, "x_lm")


def one_line_error(capsys: pytest.CaptureFixture, call: Any) -> str:
    """Run a command's main; it must exit 2 with exactly one ``error:`` line on stderr."""
    with pytest.raises(SystemExit) as e:
        call()
    lines = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


# ------------------------------------------------------------------ parity
def test_sentiment_probabilities_match_pytorch(checkpoint, exports, one_thread):
    model = load_model(checkpoint, "sentiment")
    onnx_model = runtime.load(exports["sentiment"], threads=1)
    texts = [text for text, _ in SyntheticSentiment(num_examples=600).load("test")[0]]
    texts += ["great", "the plot was not good , but the cast was superb and the end was fun ."]
    for size in (1, 7, len(texts)):  # batches of several padded lengths
        for start in range(0, len(texts), size):
            batch = texts[start : start + size]
            ours, cut = onnx_model.predict(batch)
            theirs, _ = model.predict(batch)
            assert cut == 0 and [r["label"] for r in ours] == [r["label"] for r in theirs]
            for a, b in zip(ours, theirs, strict=True):
                assert a["text"] == b["text"]
                assert a["probs"] == pytest.approx(b["probs"], abs=1e-4)


def test_translations_match_pytorch_greedy_and_beam(translation_ckpt, exports, one_thread):
    model = load_model(translation_ckpt, "translation")
    onnx_model = runtime.load(exports["translation"], threads=1)
    sources = [src for src, _ in SyntheticTranslation(num_examples=1500).load("test")[0]]
    assert len(sources) == 150
    for beam in (1, 5):
        ours = onnx_model.translate(sources, beam_size=beam)[0]
        theirs = model.translate(sources, beam_size=beam)[0]
        same = sum(a[0]["translation"] == b[0]["translation"]
                   for a, b in zip(ours, theirs, strict=True))
        assert same >= 0.99 * len(sources), (beam, same)
        assert max(abs(a[0]["score"] - b[0]["score"]) for a, b in zip(ours, theirs, strict=True)
                   if a[0]["translation"] == b[0]["translation"]) < 1e-3
    # n-best lists, attention and the length limit as the PyTorch path has them.
    ours = onnx_model.translate(sources[:4], beam_size=4, n_best=3, max_length_ratio=0.5)[0]
    theirs = model.translate(sources[:4], beam_size=4, n_best=3, max_length_ratio=0.5)[0]
    for a, b in zip(ours, theirs, strict=True):
        assert [h["translation"] for h in a] == [h["translation"] for h in b]
        assert [h["tokens"] for h in a] == [h["tokens"] for h in b]
        np.testing.assert_allclose(a[0]["attention"], b[0]["attention"].numpy(), atol=1e-4)
    ours, theirs = onnx_model.predict(sources[:3])[0], model.predict(sources[:3])[0]
    assert [r["translation"] for r in ours] == [r["translation"] for r in theirs]
    assert [r["score"] for r in ours] == pytest.approx([r["score"] for r in theirs], abs=1e-3)


def test_greedy_generation_matches_pytorch_for_200_tokens(lm_ckpt, lm_export, one_thread):
    model = load_model(lm_ckpt, "generation")
    onnx_model = runtime.load(lm_export, threads=1)
    for prompt in ("the cat", "", "Once upon a time"):
        ours = onnx_model.generate(prompt, max_new_tokens=200, temperature=0.0)
        theirs = model.generate(prompt, max_new_tokens=200, temperature=0.0)
        assert without_seconds(ours) == without_seconds(theirs)
        assert ours[0]["tokens"] == 200  # no <eos> before: 200 tokens compared
    # The repetition penalty acts on raw logits, which the step graph returns: same tokens.
    settings = {"max_new_tokens": 60, "temperature": 0.0, "repetition_penalty": 1.3,
                "stop": ["\n"]}
    assert without_seconds(onnx_model.generate("the", **settings)) == \
        without_seconds(model.generate("the", **settings))


def test_sampling_is_reproducible_streams_and_stops(lm_export):
    model = runtime.load(lm_export, threads=1)
    settings = {"max_new_tokens": 40, "temperature": 0.9, "top_k": 10, "top_p": 0.9,
                "repetition_penalty": 1.1, "seed": 3, "num_samples": 3}
    first = model.generate("the", **settings)
    assert without_seconds(first) == without_seconds(model.generate("the", **settings))
    assert len({r["text"] for r in first}) > 1  # three different draws
    assert without_seconds(model.generate("the", **{**settings, "seed": 4})) != \
        without_seconds(first)
    streams, pieces = model.start_generation("the", max_new_tokens=50, temperature=0.0)
    parts = [p[0] for p in pieces]
    whole = model.generate("the", max_new_tokens=50, temperature=0.0)[0]
    assert "".join(parts) == streams[0].text == whole["text"]
    stop = whole["text"][10:12]
    stopped = model.generate("the", max_new_tokens=50, temperature=0.0, stop=[stop])[0]
    assert stopped["text"] == whole["text"][: whole["text"].index(stop)]
    for bad, message in (({"temperature": -1}, "temperature must be >= 0"),
                         ({"top_k": 3, "temperature": 0.0}, "temperature=0 is greedy"),
                         ({"num_samples": 0}, "num_samples must be a positive integer")):
        with pytest.raises(ValueError, match=message):
            model.start_generation("the", **bad)
    with pytest.raises(ValueError, match="never saw"):
        model.start_generation("the \u00dc")


# --------------------------------------------- every architecture, untrained
def saved(model: Any, path: Path) -> Path:
    """An untrained model as a checkpoint file, as train.py writes it."""
    torch.save({"nlp_lstm": {"task": model.task, "model": type(model).__name__,
                             "version": __version__, "format": CHECKPOINT_FORMAT},
                "hyper_parameters": dict(model.hparams), "state_dict": model.state_dict()},
               path)
    return path


VARIANTS = [
    ("sentiment", {"pooling": "last"}),
    ("sentiment", {"pooling": "mean", "encoder": {"hidden_size": 8, "cell": "gru",
                                                  "bidirectional": True, "num_layers": 2}}),
    ("sentiment", {"pooling": "attention", "encoder": {"hidden_size": 8, "num_layers": 3}}),
    ("bow", {}),
    ("translation", {"attention": "luong_dot"}),
    ("translation", {"attention": "bahdanau", "bridge": "none", "tie_embeddings": True,
                     "encoder": {"cell": "gru"}}),
    ("translation", {"attention": "luong_concat", "input_feeding": False, "decoder_layers": 2,
                     "share_embeddings": True}),
    ("generation", {"encoder": {"hidden_size": 8, "num_layers": 2, "cell": "gru"},
                    "attention": "window", "attention_window": 4}),
    ("generation", {"encoder": {"hidden_size": 8}, "tie_embeddings": False}),
]


@pytest.mark.parametrize(("kind", "settings"), VARIANTS)
def test_every_architecture_exports_and_computes_the_same(kind, settings, tmp_path):
    """Graph by graph, on untrained models: encoders of every shape (layers, directions, GRU),
    every pooling, attention, bridge, tying and input feeding."""
    torch.manual_seed(0)
    tok = Tokenizer.train_word_level(["the cat sat on the mat .", "a dog runs , fast !"])
    tokens = torch.tensor([[4, 5, 6, 7, 8], [9, 10, 11, 0, 0], [12, 0, 0, 0, 0]])  # (B, T)
    lengths = torch.tensor([5, 3, 1])
    if kind in ("sentiment", "bow"):
        cls = SentimentClassifier if kind == "sentiment" else BagOfWordsClassifier
        model = cls(tok.to_json(), ["neg", "pos"], embedding_dim=6, **settings).eval()
    elif kind == "translation":
        model = Seq2SeqTranslator(tok.to_json(), embedding_dim=8, hidden_size=16,
                                  **settings).eval()
    else:
        model = LanguageModel(tok.to_json(), embedding_dim=6, **settings).eval()
    export(saved(model, tmp_path / "model.ckpt"), tmp_path / "export")
    graphs = runtime.ExportedModel(tmp_path / "export", threads=1)
    with torch.no_grad():
        if kind in ("sentiment", "bow"):
            got = graphs.run("model", {"tokens": tokens.numpy(), "lengths": lengths.numpy()})
            expected = {"probs": model(tokens, lengths).softmax(-1)}
        elif kind == "translation":
            encoded = graphs.run("encoder", {"src": tokens.numpy(),
                                             "src_lengths": lengths.numpy()})
            state = model.net.encode(tokens, lengths)
            token = torch.tensor([2, 5, 7])
            logits, new, attention = model.net.step(token, state)
            got = {**encoded, **graphs.run("decoder", {"token": token.numpy(), **encoded})}
            expected = {"memory": state.memory.values, "mask": state.mask, "h": state.decoder.h,
                        "log_probs": logits.log_softmax(-1), "h_out": new.decoder.h,
                        "c_out": new.decoder.c, "attention": attention}
        else:
            prompt = graphs.run("prompt", {"tokens": tokens[:1].numpy()})
            logits, state = model.net.prompt(tokens[:1])
            step_logits, new = model.net.step(torch.tensor([5]), state)
            names = graphs.manifest["state"]
            step = graphs.run("step", {"token": np.array([5]), **{n: prompt[n] for n in names}})
            got = {"logits": prompt["logits"], "h": prompt["h"], "step": step["logits"],
                   "h_out": step["h_out"]}
            expected = {"logits": logits, "h": state.h, "step": step_logits, "h_out": new.h}
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value.numpy(), atol=2e-6, err_msg=name)


def test_transformer_encoders_are_refused(tmp_path, capsys):
    """Not yet exported, nor quantized on the PyTorch path: a clear refusal, not a trace."""
    tok = Tokenizer.train_word_level(["the cat sat on the mat .", "a dog runs , fast !"])
    transformer = {"kind": "transformer", "hidden_size": 16, "num_layers": 1, "nhead": 2}
    for model in (SentimentClassifier(tok.to_json(), ["neg", "pos"], embedding_dim=16,
                                      encoder=transformer),
                  LanguageModel(tok.to_json(), embedding_dim=16, encoder=transformer)):
        ckpt = saved(model.eval(), tmp_path / f"{model.task}.ckpt")
        message = one_line_error(capsys, lambda c=ckpt: export_main(
            ["--ckpt", str(c), "--out", str(tmp_path / "out")]))
        assert "has a Transformer encoder" in message
        with pytest.raises(ValueError, match="this model has a Transformer encoder"):
            quantize_model(model)


# ------------------------------------------------------- the native encoder
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_the_native_encoder_computes_our_encoder(cell):
    torch.manual_seed(0)
    ours = LSTMEncoder(5, 7, 2, bidirectional=True, cell=cell, impl="loop").double().eval()
    native = NativeEncoder(ours).double()
    x = torch.randn(4, 6, 5, dtype=torch.float64)
    lengths = torch.tensor([6, 2, 5, 1])
    h0 = torch.randn(4, 4, 7, dtype=torch.float64)
    state = (h0, torch.randn_like(h0)) if cell == "lstm" else h0
    for args in ((x, lengths), (x, lengths, state), (x, None, state)):
        (out_a, final_a), (out_b, final_b) = ours(*args), native(*args)
        torch.testing.assert_close(out_a, out_b, rtol=0, atol=1e-12)
        for a, b in zip(*(f if cell == "lstm" else (f,) for f in (final_a, final_b)),
                        strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="layer_norm=True has no torch"):
        NativeEncoder(LSTMEncoder(5, 7, layer_norm=True))


# ------------------------------------------------------- the decoding rules
class ToyModel:
    """A fixed random recurrent model in numpy: a state (N, D) per row, logits (N, V) and an
    attention (N, S) per step. Both decoders get the same log-probabilities, so they must
    return identical hypotheses."""

    def __init__(self, seed: int) -> None:
        V, D, S = 9, 6, 5
        rng = np.random.default_rng(seed)
        self.E = rng.normal(size=(V, D)).astype(np.float32)
        self.W = rng.normal(size=(D, D)).astype(np.float32)
        self.U = (2.5 * rng.normal(size=(D, V))).astype(np.float32)
        self.A = rng.normal(size=(D, S)).astype(np.float32)

    def numpy_step(self, tokens: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, ...]:
        state = np.tanh(state @ self.W + self.E[tokens])  # (N, D)
        logits = torch.from_numpy(state @ self.U)  # (N, V)
        attention = torch.from_numpy(state @ self.A).softmax(-1).numpy()  # (N, S)
        return logits.log_softmax(-1).numpy(), state, attention

    def torch_step(self, tokens: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        log_probs, new, attention = self.numpy_step(tokens.numpy(), state.numpy())
        return torch.from_numpy(log_probs), torch.from_numpy(new), torch.from_numpy(attention)


@pytest.mark.parametrize("seed", range(6))
def test_numpy_decoding_follows_the_rules_of_nn_decoding(seed):
    toy = ToyModel(seed)
    rng = np.random.default_rng(100 + seed)
    B = 4
    state = rng.normal(size=(B, 6)).astype(np.float32)
    max_lengths = rng.integers(1, 12, size=B)
    ids = {"bos_id": 2, "eos_id": 3}
    for settings in ({}, {"min_length": 3}, {"no_repeat_ngram_size": 2},
                     {"min_length": 2, "no_repeat_ngram_size": 3}):
        ours = np_decoding.greedy(toy.numpy_step, state, max_lengths=max_lengths,
                                  reorder=lambda s, i: s[i], **ids, **settings)
        theirs = torch_decoding.greedy(toy.torch_step, torch.from_numpy(state),
                                       max_lengths=torch.from_numpy(max_lengths),
                                       reorder=lambda s, i: s[i], **ids, **settings)
        assert_same(ours, theirs)
        for beam, n_best, alpha in ((1, 1, 0.0), (3, 2, 0.6), (4, 4, 1.0), (2, 1, 0.0)):
            ours = np_decoding.beam_search(
                toy.numpy_step, state, reorder=lambda s, i: s[i], max_lengths=max_lengths,
                beam_size=beam, n_best=n_best, length_penalty_alpha=alpha, **ids, **settings)
            theirs = torch_decoding.beam_search(
                toy.torch_step, torch.from_numpy(state), reorder=lambda s, i: s[i],
                max_lengths=torch.from_numpy(max_lengths), beam_size=beam, n_best=n_best,
                length_penalty_alpha=alpha, **ids, **settings)
            assert [len(h) for h in ours] == [len(h) for h in theirs]
            for a, b in zip(ours, theirs, strict=True):
                assert_same(a, b)


def assert_same(ours: list, theirs: list) -> None:
    assert [h.tokens for h in ours] == [h.tokens for h in theirs]
    for a, b in zip(ours, theirs, strict=True):
        assert a.score == pytest.approx(b.score, abs=1e-5)
        assert a.ranking_score == pytest.approx(b.ranking_score, abs=1e-5)
        np.testing.assert_allclose(a.attention, b.attention.numpy(), atol=1e-6)


# ---------------------------------------------------- graphs, manifest, int8
def test_every_graph_passes_the_checker_and_the_manifest_describes_it(exports, lm_export):
    expected = {"sentiment": {"model": (["tokens", "lengths"], ["probs"])},
                "translation": {"encoder": (["src", "src_lengths"],
                                            ["memory", "keys", "mask", "h", "c", "feed"]),
                                "decoder": (["token", "h", "c", "feed", "memory", "keys", "mask"],
                                            ["log_probs", "h_out", "c_out", "feed_out",
                                             "attention"])}}
    for task, path in [*exports.items(), ("generation", lm_export)]:
        manifest = json.loads((path / "manifest.json").read_text())
        assert manifest["task"] == task and manifest["format"] == 2
        assert manifest["special_ids"] == {"pad": 0, "unk": 1, "bos": 2, "eos": 3}
        assert (path / manifest["fitted"]["tokenizer"]["file"]).is_file()
        for name, graph in manifest["graphs"].items():
            model = onnx.load(str(path / graph["file"]))
            onnx.checker.check_model(model, full_check=True)
            assert [i.name for i in model.graph.input] == [i["name"] for i in graph["inputs"]]
            assert [o.name for o in model.graph.output] == [o["name"] for o in graph["outputs"]]
            assert "B" in graph["inputs"][0]["shape"]  # a dynamic batch axis
            if task in expected:
                assert ([i["name"] for i in graph["inputs"]],
                        [o["name"] for o in graph["outputs"]]) == expected[task][name]
        if task != "generation":
            ops = {n.op_type for g in manifest["graphs"].values()
                   for n in onnx.load(str(path / g["file"])).graph.node}
            assert "LSTM" in ops  # the encoder as native LSTM ops, not an unrolled loop
    manifest = json.loads((lm_export / "manifest.json").read_text())
    assert manifest["graphs"]["step"]["inputs"][0] == {"name": "token", "dtype": "int64",
                                                      "shape": ["B"]}
    assert manifest["graphs"]["step"]["outputs"][0]["name"] == "logits"


def test_int8_quantization_shrinks_the_graphs_and_keeps_the_answers(
        tmp_path_factory, checkpoint, translation_ckpt, exports, one_thread):
    for task, ckpt in (("sentiment", checkpoint), ("translation", translation_ckpt)):
        path = exported(tmp_path_factory, ckpt, f"q_{task}", quantize="int8")
        manifest = json.loads((path / "manifest.json").read_text())
        assert manifest["quantize"] == "int8"
        fp32 = sum(f.stat().st_size for f in exports[task].glob("*.onnx"))
        int8 = sum(f.stat().st_size for f in path.glob("*.onnx"))
        assert int8 < fp32 / 2.2, (task, fp32, int8)  # tiny models: biases, scales stay fp32
        ops = {n.op_type for f in path.glob("*.onnx") for n in onnx.load(str(f)).graph.node}
        assert "Gemm" not in ops and {"DynamicQuantizeLSTM", "MatMulInteger"} <= ops
        for f in path.glob("*.onnx"):
            onnx.checker.check_model(str(f))
        quantized, fp = runtime.load(path, threads=1), runtime.load(exports[task], threads=1)
        if task == "sentiment":
            texts = [t for t, _ in SyntheticSentiment(num_examples=600).load("test")[0]]
            a, b = quantized.predict(texts)[0], fp.predict(texts)[0]
            agree = sum(x["label"] == y["label"] for x, y in zip(a, b, strict=True))
            assert agree >= 0.9 * len(texts)
        else:
            sources = [s for s, _ in SyntheticTranslation(num_examples=1500).load("test")[0]]
            a, b = quantized.translate(sources[:40])[0], fp.translate(sources[:40])[0]
            same = [x[0]["translation"] == y[0]["translation"] for x, y in zip(a, b, strict=True)]
            assert sum(same) >= 20


def test_the_runtime_imports_no_torch(exports, lm_export):
    code = (
        "import sys\n"
        "import nlp_lstm.deploy.runtime as rt\n"
        "assert 'torch' not in sys.modules\n"
        "s, t, g = (rt.load(p, threads=1) for p in sys.argv[1:])\n"
        "s.predict(['a fine film .'])\n"
        "t.translate(['A queen cries .'], beam_size=3)\n"
        "g.generate('the', max_new_tokens=20, temperature=0.8, seed=1)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'pytorch_lightning', 'lightning', 'torchmetrics'))\n"
        "assert not bad, bad\n"
        "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", code, str(exports["sentiment"]),
                           str(exports["translation"]), str(lm_export)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


# --------------------------------------------------------------- commands
def test_the_commands_answer_the_same_with_onnx(checkpoint, translation_ckpt, exports,
                                                capsys, one_thread):
    texts = ["the plot was not good .", "the acting was dull at first , but brilliant ."]

    def lines(call: Any, argv: list[str]) -> list[dict[str, Any]]:
        call(argv)
        return [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    ours = lines(lambda a: predict_main(a, task="sentiment"), ["--onnx", str(exports["sentiment"]),
                                                                *texts])
    theirs = theirs_sentiment = lines(lambda a: predict_main(a, task="sentiment"),
                                      ["--ckpt", str(checkpoint), *texts])
    assert [r["label"] for r in ours] == [r["label"] for r in theirs]
    for a, b in zip(ours, theirs, strict=True):
        assert a["probs"] == pytest.approx(b["probs"], abs=1e-4)
    sources = ["A queen cries under this house.", "The mouse calls the girls."]
    args = ["--beam-size", "3", "--n-best", "2", *sources]
    ours = lines(translate_main, ["--onnx", str(exports["translation"]), *args])
    theirs = lines(translate_main, ["--ckpt", str(translation_ckpt), *args])
    assert [(r["translation"], [n["translation"] for n in r["nbest"]]) for r in ours] == \
        [(r["translation"], [n["translation"] for n in r["nbest"]]) for r in theirs]
    for call, argv in ((lambda a: predict_main(a, task="sentiment"), texts),
                       (translate_main, sources)):
        message = one_line_error(capsys, lambda c=call, a=argv: c(
            ["--onnx", str(exports["sentiment"]), "--ckpt", str(checkpoint), *a]))
        assert "exactly one of --ckpt PATH" in message and "got both" in message
        assert "got neither" in one_line_error(capsys, lambda c=call, a=argv: c(a))
    message = one_line_error(capsys, lambda: translate_main(
        ["--onnx", str(exports["sentiment"]), "hello"]))
    assert "is a 'sentiment' export, expected a 'translation' one" in message
    message = one_line_error(capsys, lambda: predict_main(
        ["--onnx", str(exports["sentiment"]), "--provider", "nosuch", "x"], task="sentiment"))
    assert "execution provider 'nosuch' is not available" in message
    for argv, message in ((["--onnx", str(exports["sentiment"]), "--quantize", "int8"],
                           "an export is quantized when written"),
                          (["--ckpt", str(checkpoint), "--quantize", "int4"],
                           "unknown --quantize 'int4'")):
        assert message in one_line_error(capsys, lambda a=argv: predict_main(
            [*a, "good"], task="sentiment"))
    # The PyTorch path in int8 (torch.ao): the same output format, nearly the same answers.
    int8 = lines(lambda a: predict_main(a, task="sentiment"),
                 ["--ckpt", str(checkpoint), "--quantize", "int8", *texts])
    assert [r["text"] for r in int8] == texts
    for a, b in zip(int8, theirs_sentiment, strict=True):
        assert a["probs"] == pytest.approx(b["probs"], abs=0.05)
    int8 = lines(translate_main, ["--ckpt", str(translation_ckpt), "--quantize", "int8",
                                  *sources])
    assert [r["source"] for r in int8] == sources and all(r["translation"] for r in int8)


def test_generate_command_with_onnx(lm_ckpt, lm_export, capsys, one_thread):
    args = ["--prompt", "the cat", "--max-new-tokens", "40", "--temperature", "0"]
    generate_main(["--onnx", str(lm_export), *args])
    ours = json.loads(capsys.readouterr().out)
    generate_main(["--ckpt", str(lm_ckpt), *args])
    theirs = json.loads(capsys.readouterr().out)
    assert without_seconds([ours]) == without_seconds([theirs])
    generate_main(["--onnx", str(lm_export), *args, "--stream"])
    assert capsys.readouterr().out == "the cat" + ours["text"] + "\n"
    assert "never saw" in one_line_error(capsys, lambda: generate_main(
        ["--onnx", str(lm_export), "--prompt", "\u00dc"]))


def test_export_command_bad_inputs_exit_2_with_one_line(checkpoint, tmp_path, capsys):
    other = tmp_path / "notes.txt"
    other.write_text("not a checkpoint")
    out = str(tmp_path / "out")
    for argv, message in (
        (["--ckpt", str(other)], f"refusing to load {other}"),
        (["--ckpt", str(tmp_path / "missing.ckpt")], "checkpoint not found"),
        (["--ckpt", str(checkpoint), "--opset", "9"], "opset must be an integer in [14, 20]"),
        (["--ckpt", str(checkpoint), "--opset", "seventeen"], "--opset must be an integer"),
        (["--ckpt", str(checkpoint), "--quantize", "int4"], "unknown --quantize 'int4'"),
        (["--ckpt", str(checkpoint), "--out", str(other)], "is a file; expected a directory"),
    ):
        argv = ["--out", out, *argv] if "--out" not in argv else argv
        assert message in one_line_error(capsys, lambda a=argv: export_main(a)), argv
    assert not (tmp_path / "out").exists()
    export_main(["--ckpt", str(checkpoint), "--out", out, "--opset", "14"])
    summary = json.loads(capsys.readouterr().out)
    assert summary["task"] == "sentiment" and summary["opset"] == 14
    assert onnx.load(str(tmp_path / "out" / "model.onnx")).opset_import[0].version == 14


def test_runtime_refuses_what_is_not_an_export(tmp_path, exports):
    with pytest.raises(ValueError, match="ONNX export not found"):
        runtime.load(tmp_path / "nothing")
    with pytest.raises(ValueError, match="has no manifest"):
        runtime.load(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": 99, "task": "sentiment"}))
    with pytest.raises(ValueError, match="export format 99"):
        runtime.load(tmp_path)
    with pytest.raises(ValueError, match="is a 'sentiment' export, expected a 'generation'"):
        runtime.load(exports["sentiment"], task="generation")
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in exports["sentiment"].iterdir():
        (broken / f.name).write_bytes(f.read_bytes()[:200] if f.suffix == ".onnx"
                                      else f.read_bytes())
    with pytest.raises(ValueError, match=r"cannot load .*model\.onnx"):
        runtime.load(broken)


def format_1(export: Path, out: Path) -> Path:
    """A copy of ``export`` laid out as nlp-lstm 0.2.0 wrote exports (format 1): the tokenizer
    files named at the top level of the manifest, no ``fitted`` entry."""
    shutil.copytree(export, out)
    manifest = json.loads((out / "manifest.json").read_text())
    for name, entry in manifest.pop("fitted").items():
        manifest[name] = entry["file"]
    manifest["format"] = 1
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def test_an_export_of_the_previous_format_still_loads(tmp_path, exports):
    texts = ["the plot was not good .", "this film is great ."]
    old = runtime.load(format_1(exports["sentiment"], tmp_path / "s1"), threads=1)
    assert old.predict(texts) == runtime.load(exports["sentiment"], threads=1).predict(texts)
    sources = ["A queen cries under this house."]
    old = runtime.load(format_1(exports["translation"], tmp_path / "t1"), threads=1)
    new = runtime.load(exports["translation"], threads=1)
    [a], [b] = old.translate(sources, beam_size=2)[0], new.translate(sources, beam_size=2)[0]
    assert [(h["translation"], h["score"]) for h in a] == [(h["translation"], h["score"])
                                                            for h in b]


# ----------------------------------------------------------------- serving
def test_the_server_serves_an_export(exports, lm_export, one_thread):
    sentiment = OnnxBackend(exports["sentiment"], threads=1)
    texts = ["the plot was not good .", "this film is great ."]
    with serving(sentiment) as url:
        r = httpx.post(f"{url}/predict", json={"texts": texts})
        assert r.status_code == 200
        assert r.json() == {"results": sentiment.model.predict(texts)[0]}
        assert httpx.get(f"{url}/health").json()["task"] == "sentiment"
    translation = OnnxBackend(exports["translation"], threads=1)
    sources = ["A queen cries under this house.", "The mouse calls the girls."]
    with serving(translation) as url:
        r = httpx.post(f"{url}/translate", json={"texts": sources, "beam_size": 3})
        assert r.status_code == 200
        assert r.json()["results"] == translation.endpoint.run(translation.model, sources, 3)
    generation = OnnxBackend(lm_export, threads=1)
    request = {"prompt": "the", "max_new_tokens": 30, "temperature": 0.8, "top_k": 5,
               "seed": 7, "num_samples": 2}
    with serving(generation) as url:
        r = httpx.post(f"{url}/generate", json=request)
        assert r.status_code == 200
        direct = generation.model.generate(**request)
        assert without_seconds(r.json()["results"]) == without_seconds(direct)
        r = httpx.post(f"{url}/generate", json={"prompt": "the", "temperature": -1})
        assert r.status_code == 422 and "temperature must be >= 0" in r.json()["error"]


def test_the_serve_command_takes_onnx_or_ckpt(checkpoint, exports, capsys):
    for argv, message in (
        (["--ckpt", str(checkpoint), "--onnx", str(exports["sentiment"])], "exactly one of"),
        ([], "exactly one of"),
        (["--onnx", str(exports["sentiment"]), "--max-batch-size", "0"],
         "max_batch_size must be positive"),  # the export loaded, then the setting was checked
        (["--ckpt", str(checkpoint), "--provider", "cuda"], "--provider cuda applies to --onnx"),
    ):
        assert message in one_line_error(capsys, lambda a=argv: serve_main(a)), argv


# --------------------------------------------------------------------- GPU
@pytest.mark.gpu
def test_an_export_runs_on_the_cuda_execution_provider(exports):
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("no CUDAExecutionProvider (needs onnxruntime-gpu and a GPU)")
    gpu = runtime.load(exports["translation"], providers=["cuda"])
    assert gpu.export.sessions["decoder"].get_providers()[0] == "CUDAExecutionProvider"
    cpu = runtime.load(exports["translation"])
    sources = [s for s, _ in SyntheticTranslation(num_examples=1500).load("test")[0]]
    ours, theirs = gpu.translate(sources, beam_size=5)[0], cpu.translate(sources, beam_size=5)[0]
    same = [a[0]["translation"] == b[0]["translation"] for a, b in zip(ours, theirs, strict=True)]
    assert sum(same) >= 0.99 * len(sources)
