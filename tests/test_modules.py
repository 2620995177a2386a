"""The networks: cell, encoder, pooling, mask."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nlp_lstm.nn import LSTMCell, LSTMEncoder, Pooling, lengths_to_mask, reverse_padded

IMPLS = ("loop", "fused", "auto")


def reference(lstm: nn.LSTM, x, lengths, state=None):
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, (h, c) = lstm(packed, state)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))
    return out, (h, c)


def test_mask_polarity():
    mask = lengths_to_mask(torch.tensor([2, 0, 3]), 4)
    assert mask.tolist() == [[True, True, False, False], [False] * 4, [True, True, True, False]]


def test_reverse_padded_is_an_involution_that_keeps_padding():
    x = torch.arange(8.0).view(2, 4, 1)
    lengths = torch.tensor([3, 4])
    r = reverse_padded(x, lengths)
    assert r[:, :, 0].tolist() == [[2, 1, 0, 3], [7, 6, 5, 4]]
    assert torch.equal(reverse_padded(r, lengths), x)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("layers", "bidirectional"), [(1, False), (2, True), (3, True)])
def test_shapes(impl, layers, bidirectional):
    enc = LSTMEncoder(5, 7, layers, bidirectional=bidirectional, impl=impl)
    D = 2 if bidirectional else 1
    out, (h, c) = enc(torch.randn(4, 6, 5), torch.tensor([6, 1, 3, 2]))
    assert out.shape == (4, 6, D * 7) and enc.output_size == D * 7
    assert h.shape == c.shape == (layers * D, 4, 7)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("layers", "bidirectional"), [(1, False), (1, True), (2, True)])
def test_parity_with_nn_lstm(impl, layers, bidirectional):
    torch.manual_seed(0)
    ref = nn.LSTM(5, 7, layers, batch_first=True, bidirectional=bidirectional).double()
    enc = LSTMEncoder(5, 7, layers, bidirectional=bidirectional, impl=impl).double()
    enc.load_state_dict(ref.state_dict())
    x = torch.randn(4, 9, 5, dtype=torch.double, requires_grad=True)
    lengths = torch.tensor([3, 9, 1, 6])
    D = 2 if bidirectional else 1
    h0 = torch.randn(layers * D, 4, 7, dtype=torch.double)
    state = (h0, torch.randn_like(h0))

    out, (h, c) = enc(x, lengths, state)
    grads = torch.autograd.grad((out.sum() + h.sum() + c.sum()), [x, *enc.parameters()])
    ref_out, (ref_h, ref_c) = reference(ref, x, lengths, state)
    ref_grads = torch.autograd.grad(ref_out.sum() + ref_h.sum() + ref_c.sum(),
                                    [x, *ref.parameters()])
    for ours, theirs in zip((out, h, c, *grads), (ref_out, ref_h, ref_c, *ref_grads), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-10)


@pytest.mark.parametrize("impl", IMPLS)
def test_padding_invariance(impl):
    """A sequence's outputs and final states do not depend on its padding or its batch."""
    torch.manual_seed(1)
    enc = LSTMEncoder(4, 6, 2, bidirectional=True, impl=impl).double().eval()
    lengths = [5, 2, 7]
    x = torch.randn(3, 7, 4, dtype=torch.double)
    out, (h, c) = enc(x, lengths)
    for b, n in enumerate(lengths):
        alone, (h1, c1) = enc(x[b : b + 1, :n], [n])
        torch.testing.assert_close(out[b, :n], alone[0], rtol=0, atol=1e-12)
        torch.testing.assert_close(h[:, b], h1[:, 0], rtol=0, atol=1e-12)
        torch.testing.assert_close(c[:, b], c1[:, 0], rtol=0, atol=1e-12)
        assert torch.count_nonzero(out[b, n:]) == 0  # zero after the sequence's end


def test_state_dict_interchanges_with_nn_lstm():
    enc = LSTMEncoder(3, 4, 2, bidirectional=True)
    ref = nn.LSTM(3, 4, 2, batch_first=True, bidirectional=True)
    ref.load_state_dict(enc.state_dict())
    enc.load_state_dict(ref.state_dict())
    assert [n for n, _ in enc.named_parameters()] == [n for n, _ in ref.named_parameters()]


def test_xavier_init_sets_forget_bias_and_orthogonal_blocks():
    enc = LSTMEncoder(6, 8, 2, bidirectional=True, init="xavier")
    H = 8
    for name, p in enc.named_parameters():
        if name.startswith("bias_ih"):
            total = p + getattr(enc, name.replace("bias_ih", "bias_hh"))
            assert torch.equal(total[H : 2 * H], torch.ones(H))
            assert torch.count_nonzero(total[:H]) == 0 and torch.count_nonzero(total[2 * H :]) == 0
        if name.startswith("weight_hh"):
            for block in p.detach().split(H):
                torch.testing.assert_close(block @ block.T, torch.eye(H), atol=1e-5, rtol=0)


def test_cell_matches_nn_lstm_cell():
    ref = nn.LSTMCell(5, 7)
    cell = LSTMCell(5, 7)
    cell.load_state_dict(ref.state_dict())
    x, h, c = torch.randn(3, 5), torch.randn(3, 7), torch.randn(3, 7)
    for ours, theirs in zip(cell(x, (h, c)), ref(x, (h, c)), strict=True):
        torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize(
    ("kwargs", "call", "message"),
    [
        ({}, lambda e: e(torch.randn(2, 3)), "3-D"),
        ({}, lambda e: e(torch.randn(2, 3, 4)), "expected input_size=5"),
        ({}, lambda e: e(torch.randn(2, 3, 5), torch.tensor([1, 2, 3])), "size B=2"),
        ({}, lambda e: e(torch.randn(2, 3, 5), torch.tensor([0, 2])), r"\[1, T=3\]"),
        ({}, lambda e: e(torch.randn(2, 3, 5), torch.tensor([4, 2])), r"\[1, T=3\]"),
        ({}, lambda e: e(torch.randn(2, 3, 5), None, (torch.zeros(1, 2, 7),) * 2),
         r"expected \(1, 2, 6\)"),
    ],
)
def test_errors_name_the_values(kwargs, call, message):
    with pytest.raises(ValueError, match=message):
        call(LSTMEncoder(5, 6, **kwargs))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="impl"):
        LSTMEncoder(2, 3, impl="cudnn")
    with pytest.raises(ValueError, match="init"):
        LSTMEncoder(2, 3, init="he")


@pytest.mark.parametrize("mode", ["mean", "max", "attention", "last"])
def test_pooling_ignores_padding(mode):
    torch.manual_seed(0)
    pool = Pooling(mode, 4)
    out = torch.randn(2, 5, 4)
    mask = lengths_to_mask(torch.tensor([3, 5]), 5)
    last = torch.randn(2, 4)
    garbage = out.clone()
    garbage[0, 3:] = 1e6  # padding content must not matter
    torch.testing.assert_close(pool(out, mask, last), pool(garbage, mask, last))
