"""Documents read in chunks with the state carried across them (``nlp_lstm.nn.chunked``): the
same outputs, states and gradients as one pass, both directions; concat pooling; a document
classifier trained end to end."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import TINY, compose_train

from nlp_lstm.nn import LSTMEncoder, Pooling, lengths_to_mask
from nlp_lstm.nn.chunked import encode_in_chunks
from nlp_lstm.sentiment.net import LSTMClassifierNet

LENGTHS = [11, 3, 8, 1, 6, 9]  # 3 and 6 end on a boundary of chunks of 3; 1 in the first chunk
T = max(LENGTHS)


def _encoder(cell: str, layers: int, bidirectional: bool, **kwargs) -> LSTMEncoder:
    torch.manual_seed(0)
    return LSTMEncoder(5, 4, layers, bidirectional=bidirectional, cell=cell, **kwargs).double()


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    x = torch.randn(len(LENGTHS), T, 5, dtype=torch.float64, requires_grad=True)
    return x, torch.tensor(LENGTHS)


def _states(state: object) -> list[torch.Tensor]:
    return list(state) if isinstance(state, tuple) else [state]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize(("layers", "bidirectional"), [(1, False), (2, False), (1, True),
                                                       (2, True)])
@pytest.mark.parametrize("chunk", [1, 3, 4, T, T + 5])
def test_chunks_equal_one_pass_outputs_states_and_gradients(cell, layers, bidirectional, chunk):
    encoder = _encoder(cell, layers, bidirectional)
    x, lengths = _inputs()
    whole, whole_state = encoder(x, lengths)
    chunked, chunked_state = encode_in_chunks(encoder, x, lengths, chunk)
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=0)
    for a, b in zip(_states(chunked_state), _states(whole_state), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    # Gradients: every step's output counts (as pooling over the document does).
    weights = torch.randn_like(whole)
    grads = [torch.autograd.grad((out * weights).sum() + sum(s.sum() for s in _states(st)),
                                 [x, *encoder.parameters()])
             for out, st in ((whole, whole_state), (chunked, chunked_state))]
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_an_initial_state_and_layer_norm_carry_over():
    encoder = _encoder("lstm", 2, True, layer_norm=True)
    x, lengths = _inputs()
    state = (torch.randn(4, len(LENGTHS), 4, dtype=torch.float64),
             torch.randn(4, len(LENGTHS), 4, dtype=torch.float64))
    whole, (h, c) = encoder(x, lengths, state)
    chunked, (h2, c2) = encode_in_chunks(encoder, x, lengths, 2, state)
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=0)
    torch.testing.assert_close((h2, c2), (h, c), atol=1e-5, rtol=0)


def test_detach_keeps_the_values_and_cuts_the_gradient_at_chunk_boundaries():
    encoder = _encoder("lstm", 1, False)
    x, lengths = _inputs()
    whole, (h, _) = encoder(x, lengths)
    cut, (h_cut, _) = encode_in_chunks(encoder, x, lengths, 3, detach=True)
    torch.testing.assert_close(cut, whole, atol=1e-5, rtol=0)
    # The first sequence (11 steps): its final state depends on step 0 only through the chunks.
    full_grad, = torch.autograd.grad(h[0, 0].sum(), x)
    cut_grad, = torch.autograd.grad(h_cut[0, 0].sum(), x)
    assert full_grad[0, :3].abs().sum() > 0 and cut_grad[0, :9].abs().sum() == 0
    assert cut_grad[0, 9:11].abs().sum() > 0  # the last chunk (steps 9-10) still learns


def test_no_padding_is_read_and_a_bad_chunk_length_is_refused():
    encoder = _encoder("lstm", 1, True)
    x, lengths = _inputs()
    poisoned = x.detach().clone()
    poisoned[~lengths_to_mask(lengths, T)] = 1e6  # padded steps hold garbage
    clean, _ = encode_in_chunks(encoder, x.detach(), lengths, 3)
    dirty, _ = encode_in_chunks(encoder, poisoned, lengths, 3)
    torch.testing.assert_close(dirty, clean, atol=0, rtol=0)
    with pytest.raises(ValueError, match="chunk_length must be a positive integer, got 0"):
        encode_in_chunks(encoder, x, lengths, 0)


def test_concat_pooling_is_last_max_mean_of_real_tokens_only():
    outputs = torch.tensor([[[1.0], [5.0], [3.0]], [[2.0], [-9.0], [100.0]]])  # (B=2, T=3, F=1)
    mask = lengths_to_mask(torch.tensor([3, 2]), 3)  # the second sequence's step 2 is padding
    last = torch.tensor([[3.0], [-9.0]])
    pooled = Pooling("concat", 1)(outputs, mask, last)
    assert pooled.tolist() == [[3.0, 5.0, 3.0], [-9.0, 2.0, -3.5]]
    assert Pooling("concat", 4).output_size == 12
    with pytest.raises(ValueError, match="'concat' needs the encoder's final states"):
        Pooling("concat", 1)(outputs, mask)


def test_the_classifier_reads_in_chunks_exactly_and_refuses_a_transformer():
    torch.manual_seed(0)
    settings = {"hidden_size": 6, "num_layers": 2, "bidirectional": True}
    one_pass = LSTMClassifierNet(30, 2, 0, 8, settings, "concat", 0.0)
    chunked = LSTMClassifierNet(30, 2, 0, 8, settings, "concat", 0.0, chunk_length=4)
    chunked.load_state_dict(one_pass.state_dict())
    tokens = torch.randint(1, 30, (len(LENGTHS), T))
    tokens[~lengths_to_mask(torch.tensor(LENGTHS), T)] = 0
    lengths = torch.tensor(LENGTHS)
    torch.testing.assert_close(chunked.eval()(tokens, lengths), one_pass.eval()(tokens, lengths),
                               atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="chunk_length=4 needs a recurrent encoder"):
        LSTMClassifierNet(30, 2, 0, 8, {"kind": "transformer", "hidden_size": 8, "nhead": 2},
                          "max", 0.0, chunk_length=4)


def test_a_document_classifier_trains_end_to_end_and_exports(tmp_path, one_thread):
    """Trained reading in chunks of 4 with concat pooling; its ONNX export (one pass through the
    native LSTM op) predicts the same."""
    import nlp_lstm
    from nlp_lstm.commands.export import export
    from nlp_lstm.drivers.train import train

    train(compose_train(tmp_path, [*TINY, "model.chunk_length=4", "model.pooling=concat"]))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["val/acc"] > 0.6, metrics
    export(metrics["checkpoint"], tmp_path / "export")
    texts = ["the film was not good at all , and far too long .", "a fine , moving film ."]
    ours, _ = nlp_lstm.load(metrics["checkpoint"]).predict(texts)
    onnx, _ = nlp_lstm.load(tmp_path / "export").predict(texts)
    for a, b in zip(ours, onnx, strict=True):
        assert a["probs"] == pytest.approx(b["probs"], abs=1e-5)
