"""Sampling from an autoregressive model: logit processors and the sampling loop, pure functions
of a step function and a state.

A step function maps the tokens just chosen (B,) and a state to the next logits (B, V) and the
next state; the state is opaque here, so any model fits (``LanguageModelNet.step``, a decoder).
The loop never mutates the state it is given and runs the step function without gradients.

The logits of every step pass through, in this order (that of Hugging Face ``generate``):

1. ``penalize_repetition`` (CTRL, Keskar et al. 2019): every token already seen, in the prompt
   or generated, has its logit divided by r if positive and multiplied by r if not; r > 1
   discourages repetition, r = 1 is off.
2. ``apply_temperature``: logits / temperature. Temperature 0 means greedy decoding (argmax, no
   randomness), the convention of this module; steps 3 and 4 then change nothing.
3. ``top_k_filter``: only the k most likely tokens stay (ties with the k-th stay too); 0 is off.
4. ``top_p_filter`` (nucleus, Holtzman et al. 2020): only the smallest set of most likely tokens
   whose probability reaches p stays, never fewer than one; 1.0 is off.

Legend: B batch (one row per sample), V vocab, N generated tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple, TypeVar

import torch

from nlp_lstm.inference import check_sampling

__all__ = ["Sampled", "apply_temperature", "check_sampling", "choose", "iter_sample",
           "penalize_repetition", "process_logits", "sample", "top_k_filter", "top_p_filter"]

State = TypeVar("State")
StepFn = Callable[[torch.Tensor, State], tuple[torch.Tensor, State]]


# ------------------------------------------------------------ logit processors
def penalize_repetition(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """logits (B, V), seen (B, V) bool -> (B, V): seen tokens' logits divided by ``penalty``
    where positive, multiplied by it where not (each token once, however often it was seen)."""
    if penalty == 1.0:
        return logits
    penalized = torch.where(logits > 0, logits / penalty, logits * penalty)  # (B, V)
    return torch.where(seen, penalized, logits)


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """logits (B, V) -> logits / temperature (B, V); temperature > 0."""
    return logits if temperature == 1.0 else logits / temperature


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """logits (B, V) -> (B, V), -inf outside each row's k largest (and their ties); k = 0 is
    off, k >= V keeps all."""
    if k == 0 or k >= logits.size(-1):
        return logits
    kth = logits.topk(k, dim=-1).values[:, -1:]  # (B, 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """logits (B, V) -> (B, V), -inf outside each row's nucleus: the most likely tokens, in
    order, until their probability reaches p (the token that reaches it included; at least
    one token). p = 1 is off."""
    if p >= 1.0:
        return logits
    sorted_logits, order = logits.sort(dim=-1, descending=True)  # (B, V) each
    probs = sorted_logits.softmax(dim=-1)  # (B, V)
    before = probs.cumsum(dim=-1) - probs  # (B, V), the mass of the tokens ahead of each
    drop_sorted = before >= p  # the nucleus had reached p without this token
    drop_sorted[:, 0] = False
    drop = drop_sorted.scatter(1, order, drop_sorted)  # (B, V), back to vocabulary order
    return logits.masked_fill(drop, float("-inf"))


def process_logits(
    logits: torch.Tensor, seen: torch.Tensor | None, *, temperature: float, top_k: int,
    top_p: float, repetition_penalty: float,
) -> torch.Tensor:
    """All processors in order (module docstring): logits (B, V) -> (B, V). With temperature 0
    only the repetition penalty applies (greedy decoding takes the argmax of the result)."""
    if seen is not None:
        logits = penalize_repetition(logits, seen, repetition_penalty)
    if temperature == 0.0:
        return logits
    return top_p_filter(top_k_filter(apply_temperature(logits, temperature), top_k), top_p)


def choose(
    logits: torch.Tensor, temperature: float, generator: torch.Generator | None
) -> torch.Tensor:
    """Processed logits (B, V) -> tokens (B,): the argmax if temperature is 0, else a draw."""
    if temperature == 0.0:
        return logits.argmax(dim=-1)
    probs = logits.float().softmax(dim=-1)  # (B, V)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)  # (B,)


# --------------------------------------------------------------------- the loop
def iter_sample(
    step_fn: StepFn,
    state: State,
    first_logits: torch.Tensor,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    repetition_penalty: float = 1.0,
    prompt_ids: torch.Tensor | None = None,
    eos_id: int | None = None,
    pad_id: int | None = None,
    generator: torch.Generator | None = None,
) -> Iterator[torch.Tensor]:
    """Sample token by token, yielding each step's tokens (B,) as soon as they are chosen.

    Arguments are checked at the call, before the first token. To stop early (a stop string,
    a client gone), stop iterating: the step function is called only for the next token
    asked for, never ahead.

    Args:
        step_fn: (tokens (B,), state) -> (logits (B, V), state).
        state: the state after the prompt, for B rows (one per sample: to draw n samples of
            one prompt, give n rows).
        first_logits: (B, V) the logits of the first token to generate, from the prompt.
        max_new_tokens: N >= 0, the most tokens per row.
        temperature, top_k, top_p, repetition_penalty: see the module docstring.
        prompt_ids: (B, P) the prompt's ids, which the repetition penalty counts as seen
            (as Hugging Face does); None = none.
        eos_id: a row that produced it is finished (its ``<eos>`` is yielded) and yields
            ``pad_id`` from then on; the loop ends when all rows are finished.
        pad_id: what finished rows yield; defaults to ``eos_id``.
        generator: the random source of the draws; seed it for reproducible samples.

    Yields:
        (B,) int64 token ids, one tensor per step, at most ``max_new_tokens``.
    """
    check_sampling(temperature=temperature, top_k=top_k, top_p=top_p,
                   repetition_penalty=repetition_penalty, max_new_tokens=max_new_tokens)
    if not isinstance(first_logits, torch.Tensor) or first_logits.dim() != 2:
        shape = tuple(first_logits.shape) if isinstance(first_logits, torch.Tensor) else None
        raise ValueError(f"first_logits must be a 2-D tensor (B, V), got {shape}")
    B, V = first_logits.shape
    for name, value in (("eos_id", eos_id), ("pad_id", pad_id)):
        if value is not None and not 0 <= value < V:
            raise ValueError(f"{name} must be in [0, {V}) or None, got {value!r}")
    if prompt_ids is not None and (prompt_ids.dim() != 2 or prompt_ids.size(0) != B):
        raise ValueError(f"prompt_ids must be (B={B}, P), got {tuple(prompt_ids.shape)}")
    return _sample_steps(step_fn, state, first_logits.detach(), max_new_tokens,
                         temperature, top_k, top_p, repetition_penalty, prompt_ids, eos_id,
                         eos_id if pad_id is None else pad_id, generator)


def _sample_steps(
    step_fn: StepFn, state: State, logits: torch.Tensor, max_new_tokens: int,
    temperature: float, top_k: int, top_p: float, repetition_penalty: float,
    prompt_ids: torch.Tensor | None, eos_id: int | None, pad_id: int | None,
    generator: torch.Generator | None,
) -> Iterator[torch.Tensor]:
    B, V = logits.shape
    seen = None
    if repetition_penalty != 1.0:  # kept as a (B, V) mask: constant cost per step
        seen = torch.zeros(B, V, dtype=torch.bool, device=logits.device)
        if prompt_ids is not None:
            seen.scatter_(1, prompt_ids.to(logits.device), True)
    finished = torch.zeros(B, dtype=torch.bool, device=logits.device)
    for n in range(max_new_tokens):
        processed = process_logits(logits, seen, temperature=temperature, top_k=top_k,
                                   top_p=top_p, repetition_penalty=repetition_penalty)
        tokens = choose(processed, temperature, generator)  # (B,)
        if eos_id is not None:
            tokens = tokens.masked_fill(finished, pad_id)
            finished = finished | (tokens == eos_id)
        if seen is not None:
            seen.scatter_(1, tokens.unsqueeze(1), True)
        yield tokens
        if n + 1 == max_new_tokens or bool(finished.all()):
            return
        with torch.no_grad():
            logits, state = step_fn(tokens, state)  # (B, V)


class Sampled(NamedTuple):
    """tokens: (B, N) generated ids, ``pad_id`` after a row's ``<eos>``; N is the longest row.
    lengths: (B,) tokens per row, its ``<eos>`` included."""

    tokens: torch.Tensor
    lengths: torch.Tensor


def sample(
    step_fn: StepFn,
    state: State,
    first_logits: torch.Tensor,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    repetition_penalty: float = 1.0,
    prompt_ids: torch.Tensor | None = None,
    eos_id: int | None = None,
    pad_id: int | None = None,
    generator: torch.Generator | None = None,
) -> Sampled:
    """``iter_sample`` run to the end (same arguments); greedy decoding is temperature 0."""
    steps = list(iter_sample(step_fn, state, first_logits, max_new_tokens,
                             temperature=temperature, top_k=top_k, top_p=top_p,
                             repetition_penalty=repetition_penalty, prompt_ids=prompt_ids,
                             eos_id=eos_id, pad_id=pad_id, generator=generator))
    B = first_logits.size(0)
    if not steps:
        empty = first_logits.new_zeros(B, 0, dtype=torch.int64)  # (B, 0)
        return Sampled(empty, first_logits.new_zeros(B, dtype=torch.int64))
    tokens = torch.stack(steps, dim=1)  # (B, N)
    lengths = torch.full((B,), tokens.size(1), dtype=torch.int64, device=tokens.device)
    if eos_id is not None:
        is_eos = tokens == eos_id  # (B, N)
        first_eos = is_eos.int().argmax(dim=1)  # (B,) 0 where there is none
        lengths = torch.where(is_eos.any(dim=1), first_eos + 1, lengths)
    return Sampled(tokens, lengths)
