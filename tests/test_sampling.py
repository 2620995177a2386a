"""Sampling: the logit processors on hand-made distributions, and the loop on toy step
functions (a bigram table; scripted outputs)."""

from __future__ import annotations

import math

import pytest
import torch

from nlp_lstm.nn.sampling import (
    apply_temperature,
    iter_sample,
    penalize_repetition,
    process_logits,
    sample,
    top_k_filter,
    top_p_filter,
)

V = 20


def bigram():
    """A step function over a fixed random bigram table; the state counts the steps taken."""
    table = torch.randn(V, V, generator=torch.Generator().manual_seed(0)) * 2  # (V, V)

    def step(tokens, count):
        return table[tokens], count + 1  # (B, V)

    return step, table


def kept(logits: torch.Tensor) -> set[int]:
    return set(torch.isfinite(logits[0]).nonzero().flatten().tolist())


def test_temperature_scales_logits():
    logits = torch.tensor([[1.0, -2.0, 4.0]])
    torch.testing.assert_close(apply_temperature(logits, 0.5), torch.tensor([[2.0, -4.0, 8.0]]))


def test_top_k_keeps_the_k_largest():
    logits = torch.tensor([[0.1, 3.0, -1.0, 2.0, 2.5]])
    assert kept(top_k_filter(logits, 2)) == {1, 4}
    assert kept(top_k_filter(logits, 0)) == set(range(5))  # off
    assert kept(top_k_filter(logits, 9)) == set(range(5))


@pytest.mark.parametrize(
    ("p", "expected"),
    [(0.3, {1}), (0.7, {1, 3}), (0.8, {1, 3, 2}), (0.95, {0, 1, 2, 3}), (1.0, {0, 1, 2, 3, 4}),
     (1e-9, {1})],
)
def test_top_p_keeps_the_smallest_set_reaching_p(p, expected):
    probs = torch.tensor([0.08, 0.5, 0.15, 0.25, 0.02])  # sorted: 0.5, 0.25, 0.15, 0.08, 0.02
    logits = probs.log().unsqueeze(0) + 3.0  # (1, V), any shift gives the same softmax
    assert kept(top_p_filter(logits, p)) == expected


def test_top_p_per_row():
    logits = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]]).log()
    filtered = top_p_filter(logits, 0.6)
    assert torch.isfinite(filtered).tolist() == [[True, True, False], [False, False, True]]


def test_repetition_penalty_exact_numbers():
    logits = torch.tensor([[2.0, -1.0, 0.5, 3.0, 0.0]])
    seen = torch.tensor([[True, True, False, False, True]])
    out = penalize_repetition(logits, seen, 2.0)
    assert out.tolist() == [[1.0, -2.0, 0.5, 3.0, 0.0]]
    probs, new_probs = logits.softmax(-1), out.softmax(-1)
    assert new_probs[0, 0] < probs[0, 0] and new_probs[0, 1] < probs[0, 1]  # repeated: lower
    assert torch.equal(penalize_repetition(logits, seen, 1.0), logits)  # off


def test_process_logits_order_penalty_then_temperature():
    logits = torch.tensor([[4.0, 1.0, -2.0]])
    seen = torch.tensor([[True, False, False]])
    out = process_logits(logits, seen, temperature=0.5, top_k=0, top_p=1.0,
                         repetition_penalty=2.0)
    assert out.tolist() == [[4.0, 2.0, -4.0]]  # (4 / 2) / 0.5, 1 / 0.5, -2 / 0.5


def test_seed_makes_sampling_reproducible():
    step, table = bigram()
    first = table[torch.tensor([0, 1, 2])]  # (B, V)

    def draw(seed):
        g = torch.Generator().manual_seed(seed)
        return sample(step, 0, first, 30, temperature=1.2, top_p=0.95, generator=g).tokens

    assert torch.equal(draw(7), draw(7))
    assert not torch.equal(draw(7), draw(8))


def test_top_k_1_equals_greedy():
    step, table = bigram()
    first = table[torch.arange(4)]  # (4, V)
    greedy = sample(step, 0, first, 25, temperature=0.0).tokens
    top1 = sample(step, 0, first, 25, temperature=1.5, top_k=1,
                  generator=torch.Generator().manual_seed(3)).tokens
    assert torch.equal(top1, greedy)
    # Greedy is the chain of argmaxes of the table.
    assert greedy[:, 0].tolist() == first.argmax(1).tolist()
    assert torch.equal(greedy[:, 1:], table[greedy[:, :-1]].argmax(2))


def test_draws_stay_inside_the_filtered_set():
    logits = torch.tensor([[0.0, 1.0, 3.0, 2.9, -1.0]]).repeat(500, 1)  # 500 samples at once
    tokens = sample(lambda t, s: (logits, s), None, logits, 1, top_k=2,
                    generator=torch.Generator().manual_seed(0)).tokens
    assert set(tokens.flatten().tolist()) == {2, 3}


def test_repetition_penalty_in_the_loop_counts_prompt_and_generated_tokens():
    logits = torch.tensor([[3.0, 2.9, 2.8, 2.7, -5.0]])
    fixed = lambda tokens, state: (logits, state)  # noqa: E731
    plain = sample(fixed, None, logits, 4, temperature=0.0).tokens
    assert plain.tolist() == [[0, 0, 0, 0]]
    # Each generated token's logit halves, so greedy moves on to the next one.
    penalized = sample(fixed, None, logits, 4, temperature=0.0, repetition_penalty=2.0).tokens
    assert penalized.tolist() == [[0, 1, 2, 3]]
    prompted = sample(fixed, None, logits, 3, temperature=0.0, repetition_penalty=2.0,
                      prompt_ids=torch.tensor([[0, 0, 2]])).tokens
    assert prompted.tolist() == [[1, 3, 0]]  # 0 and 2 seen in the prompt: 3.0 -> 1.5, 2.8 -> 1.4


def scripted(rows: list[list[int]]):
    """A step function whose row b emits rows[b][n] at step n; the state is the step index."""
    def logits_at(n):
        ids = torch.tensor([r[min(n, len(r) - 1)] for r in rows])
        return torch.nn.functional.one_hot(ids, V).float() * 10.0  # (B, V)

    calls = []

    def step(tokens, n):
        calls.append(tokens.clone())
        return logits_at(n + 1), n + 1

    return step, logits_at(0), calls


def test_eos_stops_a_sample_and_pads_it():
    eos, pad = 1, 0
    step, first, calls = scripted([[5, 1, 7, 7], [6, 6, 6, 1], [9, 9, 9, 9]])
    out = sample(step, 0, first, 6, temperature=0.0, eos_id=eos, pad_id=pad)
    assert out.tokens.tolist() == [[5, 1, 0, 0, 0, 0], [6, 6, 6, 1, 0, 0], [9, 9, 9, 9, 9, 9]]
    assert out.lengths.tolist() == [2, 4, 6]
    assert len(calls) == 5  # never stepped past the last token
    assert calls[2][0] == pad  # a finished row steps on its padding


def test_ends_when_every_sample_is_finished():
    step, first, calls = scripted([[5, 1], [1, 3]])
    out = sample(step, 0, first, 10, temperature=0.0, eos_id=1)  # pad defaults to eos
    assert out.tokens.tolist() == [[5, 1], [1, 1]]
    assert out.lengths.tolist() == [2, 1]
    assert len(calls) == 1


def test_streaming_can_stop_early_and_leaves_the_state_alone():
    step, first, calls = scripted([[4, 5, 6, 7, 8]])
    state = torch.zeros(3)
    stream = iter_sample(lambda t, s: (step(t, int(s[0]))[0], s + 1), state, first, 5,
                         temperature=0.0)
    got = []
    for tokens in stream:
        got.append(int(tokens[0]))
        if len(got) == 2:
            break
    assert got == [4, 5]
    assert len(calls) == 1  # one step computed, for the second token
    assert torch.equal(state, torch.zeros(3))


def test_steps_run_without_gradients():
    grad_enabled = []

    def step(tokens, state):
        grad_enabled.append(torch.is_grad_enabled())
        return torch.zeros(1, V, requires_grad=True) * 1.0, state

    sample(step, None, torch.zeros(1, V, requires_grad=True), 3)
    assert grad_enabled == [False, False]
    assert torch.is_grad_enabled()


def test_zero_new_tokens():
    out = sample(lambda t, s: (None, s), None, torch.zeros(2, V), 0)
    assert out.tokens.shape == (2, 0) and out.lengths.tolist() == [0, 0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"temperature": -0.1}, "temperature must be >= 0"),
        ({"temperature": math.nan}, "temperature"),
        ({"top_k": -1}, "top_k must be an integer >= 0"),
        ({"top_k": 2.5}, "top_k"),
        ({"top_p": 0.0}, r"top_p must be in \(0, 1\]"),
        ({"top_p": 1.5}, "top_p"),
        ({"repetition_penalty": 0.0}, "repetition_penalty must be > 0"),
        ({"repetition_penalty": -1.0}, "repetition_penalty"),
        ({"max_new_tokens": -1}, "max_new_tokens must be an integer >= 0, got -1"),
        ({"eos_id": V}, "eos_id"),
        ({"pad_id": -1}, "pad_id"),
        ({"prompt_ids": torch.zeros(3, 2, dtype=torch.long)}, "prompt_ids"),
        ({"first_logits": torch.zeros(V)}, "2-D"),
    ],
)
def test_bad_arguments_raise_before_any_step(kwargs, message):
    step, first, calls = scripted([[1, 2]])
    args = {"first_logits": first, "max_new_tokens": 3} | kwargs
    with pytest.raises(ValueError, match=message):
        iter_sample(step, 0, args.pop("first_logits"), args.pop("max_new_tokens"), **args)
    assert not calls
