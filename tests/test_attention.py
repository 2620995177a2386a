"""Attention: the four score functions, masking, keys computed once, errors."""

from __future__ import annotations

import pytest
import torch

from nlp_lstm.nn import lengths_to_mask
from nlp_lstm.nn.attention import ATTENTIONS, Attention

B, S, Q, M = 3, 6, 5, 7


def inputs(kind, dtype=torch.float64):
    torch.manual_seed(0)
    memory_size = Q if kind == "luong_dot" else M
    att = Attention(kind, Q, memory_size).to(dtype)
    query = torch.randn(B, Q, dtype=dtype)
    memory = torch.randn(B, S, memory_size, dtype=dtype)
    mask = lengths_to_mask(torch.tensor([6, 1, 4]), S)
    return att, query, memory, mask


def reference_scores(att, query, memory):
    """Each score written out for one query and one position at a time."""
    scores = torch.empty(memory.shape[:2], dtype=query.dtype)
    for b in range(memory.size(0)):
        for s in range(memory.size(1)):
            q, m = query[b], memory[b, s]
            if att.kind == "luong_dot":
                scores[b, s] = q @ m
            elif att.kind == "luong_general":
                scores[b, s] = q @ att.key_proj.weight @ m  # q^T W_a m
            else:
                hidden = torch.tanh(att.query_proj.weight @ q + att.query_proj.bias
                                    + att.key_proj.weight @ m)
                scores[b, s] = att.v.weight[0] @ hidden
    return scores


@pytest.mark.parametrize("kind", ATTENTIONS)
def test_scores_weights_and_context_match_the_formulas(kind):
    att, query, memory, mask = inputs(kind)
    context, weights = att(query, memory, att.keys(memory), mask)
    assert context.shape == (B, memory.size(2)) and weights.shape == (B, S)
    expected = reference_scores(att, query, memory).masked_fill(~mask, float("-inf")).softmax(1)
    torch.testing.assert_close(weights, expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(context, torch.einsum("bs,bsm->bm", expected, memory),
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", ATTENTIONS)
def test_padding_gets_exactly_zero_weight_and_real_positions_sum_to_one(kind, dtype):
    att, query, memory, mask = inputs(kind, dtype)
    garbage = memory.masked_fill(~mask.unsqueeze(2), 1e4)  # padding content must not matter
    context, weights = att(query, garbage, att.keys(garbage), mask)
    assert torch.count_nonzero(weights[~mask]) == 0
    assert (weights[mask] > 0).all()
    torch.testing.assert_close(weights.sum(1), torch.ones(B, dtype=dtype), rtol=0,
                               atol=1e-6 if dtype == torch.float32 else 1e-12)
    clean_context, clean_weights = att(query, memory, att.keys(memory), mask)
    assert torch.equal(weights, clean_weights)
    torch.testing.assert_close(context, clean_context, rtol=0, atol=1e-5)


@pytest.mark.parametrize("kind", ATTENTIONS)
def test_padded_memory_gets_no_gradient(kind):
    att, query, memory, mask = inputs(kind)
    memory.requires_grad_()
    context, _ = att(query, memory, att.keys(memory), mask)
    (grad,) = torch.autograd.grad(context.sin().sum(), [memory])
    assert torch.count_nonzero(grad[~mask]) == 0
    assert torch.count_nonzero(grad[mask]) > 0


def test_keys():
    memory = torch.randn(B, S, Q)
    dot = Attention("luong_dot", Q, Q)
    assert dot.keys(memory) is memory  # nothing to compute, nothing to copy
    assert Attention("luong_general", Q, M).keys(torch.randn(B, S, M)).shape == (B, S, Q)
    assert Attention("bahdanau", Q, M, attention_size=4).keys(torch.randn(B, S, M)).shape == \
        (B, S, 4)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("luong", Q, M), {}, "attention must be one of"),
        (("luong_dot", Q, M), {}, "query size = memory size, got 5 and 7"),
        (("luong_general", Q, M), {"attention_size": 4}, "attention_size applies"),
    ],
)
def test_errors(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        Attention(*args, **kwargs)
