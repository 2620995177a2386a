"""The Transformer encoder: its contract (shapes, padding, causality), the key/value cache against
the full forward, the bounded context, the models built on it and their configs."""

from __future__ import annotations

import pytest
import torch
from conftest import compose_train
from hydra.errors import InstantiationException
from hydra.utils import instantiate

from nlp_lstm.data import Tokenizer
from nlp_lstm.generation import LanguageModel
from nlp_lstm.generation.net import LanguageModelNet, LMState
from nlp_lstm.nn import KVCache, LSTMEncoder, TransformerEncoder, build_encoder
from nlp_lstm.nn.transformer import sinusoids
from nlp_lstm.sentiment.net import LSTMClassifierNet
from nlp_lstm.translation.net import Seq2Seq

pytestmark = pytest.mark.usefixtures("one_thread")

F, H, L, N = 6, 8, 2, 2  # input features, hidden, layers, heads
LENGTHS = [9, 4, 7, 1]


def make(causal: bool = True, positions: str = "sinusoidal", max_length: int = 32,
         dropout: float = 0.0, input_size: int = F) -> TransformerEncoder:
    """A small double-precision encoder in eval mode, seeded."""
    torch.manual_seed(0)
    enc = TransformerEncoder(input_size, H, L, nhead=N, dim_feedforward=12, dropout=dropout,
                             positions=positions, max_length=max_length, causal=causal)
    if positions == "learned":  # make the table matter as much as sinusoids would
        torch.nn.init.normal_(enc.position)
    return enc.double().eval()


def inputs(b: int = 4, t: int = 9, seed: int = 1) -> torch.Tensor:
    """(b, t, F) float64 normal."""
    return torch.randn(b, t, F, dtype=torch.float64,
                       generator=torch.Generator().manual_seed(seed))


# -------------------------------------------------------------------- contract
@pytest.mark.parametrize("causal", [False, True])
def test_shapes_and_state(causal):
    enc = make(causal)
    out, state = enc(inputs(), LENGTHS)
    assert out.shape == (4, 9, H) and enc.output_size == H
    if not causal:
        assert state is None
        return
    assert isinstance(state, KVCache)
    assert state.inputs.shape == (4, 9, F)
    assert state.keys.shape == state.values.shape == (L, 4, N, 9, H // N)
    assert state.lengths.tolist() == LENGTHS


def test_input_projection_only_when_sizes_differ():
    assert make(input_size=H).input_projection is None
    assert make().input_projection.weight.shape == (H, F)


def test_sinusoids_are_vaswanis():
    table = sinusoids(50, 6)
    assert table.shape == (50, 6)
    assert table[0].tolist() == pytest.approx([0, 1, 0, 1, 0, 1])
    assert table[7, 2].item() == pytest.approx(torch.sin(torch.tensor(7 / 10000 ** (2 / 6))).item())
    assert table[7, 5].item() == pytest.approx(torch.cos(torch.tensor(7 / 10000 ** (4 / 6))).item())
    assert make().state_dict().keys().isdisjoint({"position"})  # rebuilt, not saved
    assert "position" in make(positions="learned").state_dict()


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("positions", ["sinusoidal", "learned"])
def test_padding_invariance(causal, positions):
    """Each sequence alone equals its row of the padded batch; padding outputs zeros (as
    LSTMEncoder's), and padded inputs get exactly zero gradient."""
    enc = make(causal, positions)
    x = inputs().requires_grad_()
    out, _ = enc(x, torch.tensor(LENGTHS))
    for b, n in enumerate(LENGTHS):
        alone, _ = enc(x[b : b + 1, :n].detach())
        torch.testing.assert_close(out[b, :n], alone[0], rtol=0, atol=1e-12)
        assert (out[b, n:] == 0).all()
    (out * torch.randn_like(out)).sum().backward()  # (a plain sum of a layer norm is constant)
    for b, n in enumerate(LENGTHS):
        assert (x.grad[b, n:] == 0).all() and (x.grad[b, :n] != 0).any()
    lstm_out, _ = LSTMEncoder(F, H).double()(x.detach(), LENGTHS)
    assert ((lstm_out == 0) == (out == 0)).all()  # the same zeros as the LSTM's


def test_padding_invariance_on_pytorchs_inference_fast_path():
    """Not causal, float32, no grad: nn.TransformerEncoderLayer takes its fused fast path."""
    enc = make(causal=False).float()
    x = inputs().float()
    with torch.no_grad():
        out, _ = enc(x, LENGTHS)
        for b, n in enumerate(LENGTHS):
            alone, _ = enc(x[b : b + 1, :n])
            torch.testing.assert_close(out[b, :n], alone[0], rtol=1e-4, atol=1e-5)
            assert (out[b, n:] == 0).all()


@pytest.mark.parametrize("positions", ["sinusoidal", "learned"])
def test_causality(positions):
    """Changing step t changes every output from t on and none before it; without causal, the
    earlier ones change too (so the test can tell)."""
    x = inputs(b=2, t=10)
    for causal in (True, False):
        enc = make(causal, positions)
        out, _ = enc(x)
        for t in (0, 4, 9):
            changed = x.clone()
            changed[:, t] += 1.0
            new, _ = enc(changed)
            moved = (new - out).abs().amax(dim=(0, 2))  # (T,)
            assert (moved[t:] > 1e-6).all()
            if causal:
                assert (moved[:t] == 0).all()
            elif t:
                assert (moved[:t] > 1e-6).all()


def test_causal_path_equals_the_layers_own_forward():
    """The cached computation is nn.TransformerEncoderLayer's (norm_first) under a causal mask."""
    enc = make(causal=True)
    x = inputs()
    out, _ = enc(x)
    h = enc._embed(x, None)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(9, dtype=torch.float64)
    for layer in enc.layers:
        assert layer.norm_first
        h = layer(h, src_mask=mask, is_causal=True)
    torch.testing.assert_close(out, enc.norm(h), rtol=0, atol=1e-12)


# ------------------------------------------------------------ key/value cache
@pytest.mark.parametrize("chunks", [[1] * 9, [4, 1, 1, 3], [9]])
def test_cached_steps_equal_the_full_causal_forward(chunks):
    enc = make()
    x = inputs()
    whole, whole_state = enc(x)
    outs, state = [], None
    for chunk in x.split(chunks, dim=1):
        out, state = enc(chunk, state=state)
        outs.append(out)
    torch.testing.assert_close(torch.cat(outs, dim=1), whole, rtol=0, atol=1e-12)
    for got, want in zip(state, whole_state, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def test_continuing_a_padded_batch_equals_each_row_read_whole():
    enc = make()
    x, y = inputs(), inputs(t=3, seed=2)
    _, state = enc(x, LENGTHS)
    more = [3, 1, 2, 3]
    out, state = enc(y, more, state)
    assert state.lengths.tolist() == [n + m for n, m in zip(LENGTHS, more, strict=True)]
    for b, (n, m) in enumerate(zip(LENGTHS, more, strict=True)):
        whole, _ = enc(torch.cat([x[b : b + 1, :n], y[b : b + 1, :m]], dim=1))
        torch.testing.assert_close(out[b, :m], whole[0, n:], rtol=0, atol=1e-12)
        assert (out[b, m:] == 0).all()
    step, _ = enc(inputs(t=1, seed=3), state=state)  # and one step further, rows unequal
    for b, (n, m) in enumerate(zip(LENGTHS, more, strict=True)):
        whole, _ = enc(torch.cat([x[b : b + 1, :n], y[b : b + 1, :m],
                                  inputs(t=1, seed=3)[b : b + 1]], dim=1))
        torch.testing.assert_close(step[b, 0], whole[0, -1], rtol=0, atol=1e-12)


def test_a_step_is_a_pure_function_of_the_state():
    enc = make()
    _, state = enc(inputs(t=5))
    before = [t.clone() for t in state]
    x = inputs(t=1, seed=4)
    a, _ = enc(x, state=state)
    b, _ = enc(x, state=state)
    assert torch.equal(a, b)
    assert all(torch.equal(t, u) for t, u in zip(state, before, strict=True))


def test_past_max_length_the_context_is_the_last_half_re_read():
    """Within max_length a step sees the whole sequence; past it the state shrinks to its last
    max_length // 2 inputs, re-read from position 0, and grows again."""
    M = 8
    enc = make(max_length=M)
    x = inputs(b=2, t=20)
    state, start = None, 0
    for t in range(20):
        if t - start + 1 > M:
            start = t - min(M // 2, M - 1)
        out, state = enc(x[:, t : t + 1], state=state)
        want, _ = enc(x[:, start : t + 1])
        torch.testing.assert_close(out[:, 0], want[:, -1], rtol=0, atol=1e-12)
        assert state.lengths.tolist() == [t + 1 - start] * 2
    assert start > 0


def test_repeat_interleave_and_detach():
    _, state = make()(inputs(b=2, t=3))
    twice = state.repeat_interleave(2)
    assert twice.keys.shape[1] == 4 and twice.lengths.tolist() == [3, 3, 3, 3]
    assert torch.equal(twice.inputs[1], state.inputs[0])
    assert all(not t.requires_grad for t in state.detach())


# ---------------------------------------------------------------- bad settings
@pytest.mark.parametrize(("kwargs", "message"), [
    ({"nhead": 3}, "nhead=3 must divide hidden_size=8"),
    ({"nhead": 0}, "nhead must be a positive integer, got 0"),
    ({"dropout": 1.0}, "dropout must be in"),
    ({"positions": "rotary"}, "positions must be one of .* got 'rotary'"),
    ({"activation": "tanh"}, "activation must be one of .* got 'tanh'"),
    ({"max_length": 0}, "max_length must be a positive integer, got 0"),
    ({"dim_feedforward": 0}, "dim_feedforward must be a positive integer or None, got 0"),
])
def test_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TransformerEncoder(F, H, **kwargs)


def test_bad_inputs():
    enc = make(max_length=8)
    with pytest.raises(ValueError, match="T=9 steps, more than max_length=8"):
        enc(inputs())
    with pytest.raises(ValueError, match="x has 5 features, expected input_size=6"):
        enc(torch.zeros(1, 2, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, T=3\], got min 0"):
        enc(inputs(t=3), [3, 0, 1, 2])
    _, state = enc(inputs(b=2, t=3))
    with pytest.raises(ValueError, match=r"state.inputs has shape \(2, 3, 6\), expected"):
        enc(inputs(b=4, t=1), state=state)
    with pytest.raises(ValueError, match="causal=False"):
        make(causal=False)(inputs(b=2, t=1), state=state)


def test_build_encoder_picks_the_kind():
    enc = build_encoder(F, {"kind": "transformer", "hidden_size": H, "nhead": 2})
    assert isinstance(enc, TransformerEncoder) and enc.nhead == 2
    assert isinstance(build_encoder(F, {"hidden_size": H}), LSTMEncoder)  # no kind: as before
    with pytest.raises(ValueError, match="unknown encoder kind 'mamba'"):
        build_encoder(F, {"kind": "mamba", "hidden_size": H})
    with pytest.raises(ValueError, match=r"setting\(s\) \['cell'\] for kind 'transformer'"):
        build_encoder(F, {"kind": "transformer", "hidden_size": H, "cell": "gru"})
    with pytest.raises(ValueError, match="nhead=3 must divide hidden_size=8"):
        build_encoder(F, {"kind": "transformer", "hidden_size": H, "nhead": 3})
    with pytest.raises(ValueError, match="encoder kind 'transformer' does not fit this model"):
        Seq2Seq(20, 20, embedding_dim=8, hidden_size=8, encoder={"kind": "transformer"})


# ------------------------------------------------------------------- sentiment
@pytest.mark.parametrize("pooling", ["last", "mean", "max", "attention"])
def test_classifier_on_a_transformer_is_padding_invariant(pooling):
    torch.manual_seed(0)
    net = LSTMClassifierNet(30, 3, 0, 8, {"kind": "transformer", "hidden_size": H, "nhead": 2,
                                          "num_layers": 2}, pooling, 0.0).double().eval()
    tokens = torch.randint(1, 30, (4, 9))
    lengths = torch.tensor(LENGTHS)
    tokens[lengths_mask(lengths, 9).logical_not()] = 0
    logits = net(tokens, lengths)
    assert logits.shape == (4, 3)
    for b, n in enumerate(LENGTHS):
        alone = net(tokens[b : b + 1, :n], lengths[b : b + 1])
        torch.testing.assert_close(logits[b], alone[0], rtol=0, atol=1e-12)


def lengths_mask(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    return torch.arange(steps).unsqueeze(0) < lengths.unsqueeze(1)


# ------------------------------------------------------------------ generation
V = 13


def make_lm(**encoder) -> LanguageModelNet:
    torch.manual_seed(0)
    settings = {"kind": "transformer", "hidden_size": H, "num_layers": L, "nhead": N,
                "max_length": 16} | encoder
    return LanguageModelNet(V, embedding_dim=6, encoder=settings).double().eval()


def test_lm_prompt_and_steps_equal_the_teacher_forced_logits():
    net = make_lm()
    tokens = torch.randint(0, V, (3, 12))
    whole, _ = net(tokens)
    logits, state = net.prompt(tokens[:, :5])
    got = [logits]
    for t in range(5, 12):
        logits, state = net.step(tokens[:, t], state)
        got.append(logits)
    torch.testing.assert_close(torch.stack(got, dim=1), whole[:, 4:], rtol=0, atol=1e-12)
    assert isinstance(state, LMState) and state.h is None
    assert state.cache.lengths.tolist() == [12] * 3


def test_lm_greedy_generation_with_the_cache_equals_re_reading_the_text():
    """Greedy decoding by cached steps picks the tokens that re-reading the whole text (within
    the context) picks at every step."""
    net = make_lm(max_length=32)
    text = torch.randint(0, V, (2, 3))
    logits, state = net.prompt(text)
    cached = text
    for _ in range(20):
        token = logits.argmax(-1)
        cached = torch.cat([cached, token.unsqueeze(1)], dim=1)
        logits, state = net.step(token, state)
    reread = text
    for _ in range(20):
        full, _ = net(reread)
        reread = torch.cat([reread, full[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(cached, reread)


def test_lm_on_a_transformer_refuses_lstm_settings_and_states():
    with pytest.raises(ValueError, match="attention='window'"):
        LanguageModelNet(V, embedding_dim=6, attention="window",
                         encoder={"kind": "transformer", "hidden_size": H})
    with pytest.raises(ValueError, match=r"dropout_hidden=0\.1"):
        LanguageModelNet(V, embedding_dim=6, dropout_hidden=0.1,
                         encoder={"kind": "transformer", "hidden_size": H})
    with pytest.raises(ValueError, match="causal=False"):
        LanguageModelNet(V, embedding_dim=6, encoder={"kind": "transformer", "hidden_size": H,
                                                       "causal": False})
    with pytest.raises(ValueError, match=r"unknown transformer encoder arguments \['cell'\]"):
        LanguageModelNet(V, embedding_dim=6, encoder={"kind": "transformer", "hidden_size": H,
                                                       "cell": "lstm"})
    with pytest.raises(ValueError, match="unknown encoder kind 'rnn'"):
        LanguageModelNet(V, embedding_dim=6, encoder={"kind": "rnn", "hidden_size": H})
    net = make_lm()
    with pytest.raises(ValueError, match="holds its cache only"):
        net.step(torch.tensor([1]), LMState(torch.zeros(L, 1, H)))
    lstm = LanguageModelNet(V, embedding_dim=6, encoder={"hidden_size": H})
    _, state = net.prompt(torch.tensor([[1, 2]]))
    with pytest.raises(ValueError, match="this language model is an LSTM"):
        lstm.step(torch.tensor([1]), state)


def test_language_model_generates_past_its_context():
    tok = Tokenizer.train_char(["the cat sat on the mat. " * 4])
    torch.manual_seed(0)
    model = LanguageModel(tok.to_json(), embedding_dim=8, attention="none", dropout_hidden=0.0,
                          encoder={"kind": "transformer", "hidden_size": H, "nhead": N,
                                   "max_length": 10}).eval()
    assert not model.net.carries_state and model.net.context == 10
    ids, cut = model.encode_prompt("the cat sat on")  # 14 characters, a context of 10
    assert cut == 4 and len(ids) == 10
    a = model.generate("the cat", max_new_tokens=30, temperature=0.8, seed=3, num_samples=2)
    b = model.generate("the cat", max_new_tokens=30, temperature=0.8, seed=3, num_samples=2)
    assert a[0]["text"] == b[0]["text"] and a[1]["text"] == b[1]["text"]
    assert all(r["tokens"] >= 1 for r in a)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model.generate("the", max_new_tokens=15, temperature=0.0)[0]["tokens"] >= 1


def test_stream_batches_of_a_transformer_carry_nothing():
    tok = Tokenizer.train_char(["the cat sat on the mat. " * 4])
    torch.manual_seed(0)
    model = LanguageModel(tok.to_json(), embedding_dim=8, attention="none", dropout_hidden=0.0,
                          encoder={"kind": "transformer", "hidden_size": H, "nhead": N,
                                   "max_length": 10}).eval()
    batch = {"input": torch.randint(4, tok.vocab_size, (2, 6))}
    first = model._forward(batch, "val")
    assert model._states == {}
    torch.testing.assert_close(model._forward(batch, "val"), first, rtol=0, atol=0)


# --------------------------------------------------------------------- configs
QUIET = ["trainer.accelerator=cpu", "trainer.enable_progress_bar=false",
         "trainer.enable_model_summary=false", "debug=fdr"]
TINY = {
    "sentiment": ["data.source.num_examples=200", "data.loader.batch_size=16",
                  "model.embedding_dim=16", "model.encoder.hidden_size=16"],
    "generation": ["task=generation", "data.source.num_documents=40", "data.loader.batch_size=4",
                   "data.seq_len=32", "model.embedding_dim=16", "model.encoder.hidden_size=16"],
}


@pytest.mark.parametrize("task", ["sentiment", "generation"])
def test_encoder_transformer_composes_and_runs_the_fast_debug_run(task, tmp_path):
    from nlp_lstm.drivers.train import train

    cfg = compose_train(tmp_path, [*TINY[task], "encoder=transformer", *QUIET])
    assert cfg.model.encoder.kind == "transformer"
    tokenizer = Tokenizer.train_word_level(["the film was good", "the plot was bad"])
    extra = {"labels": ["negative", "positive"]} if task == "sentiment" else {}
    model = instantiate(cfg.model, tokenizer=tokenizer.to_json(), **extra, _convert_="all")
    encoder = model.net.encoder if task == "sentiment" else model.net.transformer
    assert isinstance(encoder, TransformerEncoder) and encoder.causal == (task == "generation")
    assert encoder.max_length == (32 if task == "generation" else cfg.data.loader.max_length)
    assert train(cfg) is None
    assert "kind: transformer" in (tmp_path / "config.yaml").read_text()


@pytest.mark.parametrize("task", ["sentiment", "generation", "translation"])
@pytest.mark.parametrize("choice", ["lstm", "gru"])
def test_encoder_lstm_and_gru_choices(task, choice, tmp_path):
    cfg = compose_train(tmp_path, [f"task={task}", f"encoder={choice}"])
    assert cfg.model.encoder.cell == choice and "kind" not in cfg.model.encoder


def test_encoder_transformer_for_translation_is_refused(tmp_path):
    cfg = compose_train(tmp_path, ["task=translation", "encoder=transformer"])
    tokenizer = Tokenizer.train_word_level(["the film was good", "the plot was bad"])
    with pytest.raises(InstantiationException, match="kind 'transformer' does not fit this model"):
        instantiate(cfg.model, tokenizer=tokenizer.to_json(), _convert_="all")


# -------------------------------------------------------------------- learning
def test_a_transformer_classifier_memorizes_24_sentences():
    """As test_training.test_tiny_overfit for the LSTM: the whole path can learn."""
    from nlp_lstm.data.batching import pad_sequences
    from nlp_lstm.sentiment import SentimentClassifier
    from nlp_lstm.sentiment.corpus import generate_sentiment

    torch.manual_seed(0)
    examples = generate_sentiment(24, seed=1)
    tok = Tokenizer.train_word_level([e.text for e in examples])
    model = SentimentClassifier(tok.to_json(), ["negative", "positive"], embedding_dim=32,
                                dropout=0.0, encoder={"kind": "transformer", "hidden_size": 32,
                                                      "num_layers": 2, "max_length": 64})
    tokens, lengths = pad_sequences([tok.encode(e.text) for e in examples], tok.pad_id)
    labels = torch.tensor([e.label for e in examples])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(150):
        opt.zero_grad()
        loss = model.loss(model(tokens, lengths), labels)
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    assert (model.eval()(tokens, lengths).argmax(-1) == labels).all()


def test_a_transformer_language_model_learns_a_text_and_generates_it():
    text = "the cat sat on the mat. "
    tok = Tokenizer.train_char([text])
    torch.manual_seed(0)
    model = LanguageModel(tok.to_json(), embedding_dim=32, attention="none", dropout_hidden=0.0,
                          dropout_input=0.0, dropout_output=0.0,
                          encoder={"kind": "transformer", "hidden_size": 32, "num_layers": 2,
                                   "max_length": 48})
    ids = torch.tensor(tok.encode(text * 3))  # 72 characters
    inputs, target = ids[:48].view(1, -1), ids[1:49].view(1, -1)  # (1, 48)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(150):
        opt.zero_grad()
        logits, _ = model.net(inputs)  # (1, 48, V)
        loss = torch.nn.functional.cross_entropy(logits[0], target[0])
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    # Greedy, 60 characters: past the context of 48, so through the shrunk cache too.
    out = model.eval().generate("the cat", max_new_tokens=60, temperature=0.0)[0]["text"]
    assert out == (" sat on the mat. the cat" * 3)[:60]
