"""Greedy decoding and batched beam search: pure functions over a step function and a state.

The contract with a model:

- ``step_fn(tokens (N,), state) -> (logits (N, V), state, attention (N, S) or None)``: one
  step for N rows, a pure function. Logits or log-probabilities (a log-softmax is applied, which
  leaves log-probabilities unchanged). A model without attention (a language model) returns
  None. Whatever a row reads (an encoder's memory) is part of the state, row by row.
- ``reorder(state, index (N',)) -> state``: the state of N' rows whose row n is row
  ``index[n]`` of ``state``; e.g. ``index_select`` on the batch dimension of every tensor
  (``DecoderState.select``). Beam search calls it to expand each sentence to its K beams, to
  follow the beams' back-pointers and to drop finished sentences; greedy decoding calls it (if
  given) to drop finished sentences.
- ``max_lengths`` (B,): the most tokens a hypothesis of each sentence may hold, <eos>
  included, e.g. ``a * source_lengths + b``; its device is the device of the search.

A hypothesis (``Hypothesis``) holds the generated tokens without <bos>, ending with <eos>
unless it reached its sentence's ``max_lengths`` first (then it is cut there), its ``score``,
the model's log-probability of exactly those tokens, and its ``ranking_score``, the score under
the GNMT length penalty (Wu et al. 2016) that beam search ranks by:

    ranking_score = score / lp(|Y|),  lp(|Y|) = ((5 + |Y|) / 6) ** alpha,  |Y| = len(tokens)

(alpha = 0: no penalty, ranking_score = score).

``min_length`` forbids <eos> at the first ``min_length`` steps; ``no_repeat_ngram_size`` n
forbids any token that would complete an n-gram already in the hypothesis (<bos> excluded).
Both functions run without autograd and compute log-probabilities in at least float32.

Legend: B batch (sentences), K beam size, N rows (B or B*K), V vocabulary, S source length,
T hypothesis length.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from nlp_lstm.inference import length_penalty

State = Any  # whatever the model carries between steps: tensors with a row (batch) dimension
StepFn = Callable[[torch.Tensor, State], tuple[torch.Tensor, State, torch.Tensor | None]]
Reorder = Callable[[State, torch.Tensor], State]


@dataclass(frozen=True)
class Hypothesis:
    """One decoded sequence (see the module docstring)."""

    tokens: list[int]  # T tokens, <bos> excluded, <eos> last unless cut at the length limit
    score: float  # the model's log-probability of ``tokens``
    ranking_score: float  # score / lp(T), the length-penalised score (= score for alpha 0)
    attention: torch.Tensor | None  # (T, S): row t is the attention that produced tokens[t]


def _check(
    bos_id: int, eos_id: int, max_lengths: torch.Tensor, min_length: int,
    no_repeat_ngram_size: int,
) -> None:
    if not isinstance(max_lengths, torch.Tensor) or max_lengths.dim() != 1 \
            or max_lengths.dtype.is_floating_point or max_lengths.numel() == 0:
        shape = tuple(max_lengths.shape) if isinstance(max_lengths, torch.Tensor) else \
            type(max_lengths).__name__
        raise ValueError(f"max_lengths must be a non-empty 1-D integer tensor (B,), got {shape}")
    if int(max_lengths.min()) < 1:
        raise ValueError(f"max_lengths must be >= 1, got min {int(max_lengths.min())}")
    for name, value in (("bos_id", bos_id), ("eos_id", eos_id), ("min_length", min_length),
                        ("no_repeat_ngram_size", no_repeat_ngram_size)):
        if not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")


def _log_probs(logits: torch.Tensor) -> torch.Tensor:
    """Log-softmax in at least float32 (bfloat16 logits would round the scores coarsely)."""
    return logits.to(torch.promote_types(logits.dtype, torch.float32)).log_softmax(dim=-1)


def _constrain(
    log_probs: torch.Tensor, history: torch.Tensor, eos_id: int, min_length: int,
    no_repeat_ngram_size: int,
) -> torch.Tensor:
    """Forbid tokens (-inf): <eos> before ``min_length`` tokens, repeated n-grams.

    Args:
        log_probs: (N, V) for the next token.
        history: (N, t) the tokens generated so far.
    """
    t, n = history.size(1), no_repeat_ngram_size
    if t < min_length:
        log_probs = log_probs.index_fill(1, torch.tensor([eos_id], device=log_probs.device),
                                         float("-inf"))
    if n > 0 and t >= n:  # at least one whole n-gram before the next token
        grams = history.unfold(1, n, 1)  # (N, t - n + 1, n)
        suffix = history[:, t - n + 1 :]  # (N, n - 1) completed by the next token
        seen = (grams[:, :, :-1] == suffix.unsqueeze(1)).all(dim=2)  # (N, t - n + 1)
        # scatter_add, not scatter: a token may end several n-grams, seen or not.
        hits = torch.zeros_like(log_probs).scatter_add_(1, grams[:, :, -1],
                                                        seen.to(log_probs.dtype))  # (N, V)
        log_probs = log_probs.masked_fill(hits > 0, float("-inf"))  # (N, V)
    return log_probs


def _extend(
    history: torch.Tensor, att_history: torch.Tensor | None, attention: torch.Tensor | None,
    beams: torch.Tensor, new_tokens: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Histories of C candidates per sentence: beam ``beams`` extended by ``new_tokens``.

    Args:
        history: (B, K, t) tokens of the open beams.
        att_history: (B, K, t, S) or None.
        attention: this step's attention of the open beams, (B*K, S) or (B, K, S), or None.
        beams, new_tokens: (B, C).

    Returns:
        tokens (B, C, t + 1) and attention (B, C, t + 1, S) or None.
    """
    B, C = beams.shape
    t = history.size(2)
    tokens = torch.cat([history.gather(1, beams.unsqueeze(2).expand(B, C, t)),
                        new_tokens.unsqueeze(2)], dim=2)  # (B, C, t + 1)
    if att_history is None or attention is None:
        return tokens, None
    S = att_history.size(3)
    attention = attention.view(B, -1, S)  # (B, K, S)
    index = beams.view(B, C, 1, 1)
    att = torch.cat([att_history.gather(1, index.expand(B, C, t, S)),
                     attention.gather(1, index[:, :, 0].expand(B, C, S)).unsqueeze(2)],
                    dim=2)  # (B, C, t + 1, S)
    return tokens, att


def _merge(old: torch.Tensor, new: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Pick entries of a pool: ``order`` (B, P) indexes the concatenation of ``old`` (B, P, ...)
    and ``new`` (B, C, ...) along dim 1 -> (B, P, ...)."""
    merged = torch.cat([old, new], dim=1)  # (B, P + C, ...)
    index = order.view(*order.shape, *[1] * (old.dim() - 2)).expand(*order.shape, *old.shape[2:])
    return merged.gather(1, index)


@torch.no_grad()
def greedy(
    step_fn: StepFn,
    state: State,
    *,
    bos_id: int,
    eos_id: int,
    max_lengths: torch.Tensor,
    min_length: int = 0,
    no_repeat_ngram_size: int = 0,
    reorder: Reorder | None = None,
) -> list[Hypothesis]:
    """The most probable token at every step, for B sentences at once.

    Args:
        step_fn, state: the model (module docstring); ``state`` has B rows.
        max_lengths: (B,) integers >= 1.
        reorder: if given, finished sentences leave the batch (fewer rows per step); if None,
            they keep being computed, their outputs ignored.

    Returns:
        B hypotheses, in batch order.
    """
    _check(bos_id, eos_id, max_lengths, min_length, no_repeat_ngram_size)
    B, device = max_lengths.numel(), max_lengths.device
    T = int(max_lengths.max())
    out_tokens = torch.full((B, T), eos_id, dtype=torch.long, device=device)
    out_lengths = torch.zeros(B, dtype=torch.long, device=device)
    out_scores: torch.Tensor | None = None  # (B,), in the dtype of the log-probabilities
    out_attention: torch.Tensor | None = None  # (B, T, S)
    rows = torch.arange(B, device=device)  # sentence of each current row
    running = torch.ones(B, dtype=torch.bool, device=device)  # rows still generating
    tokens = torch.full((B,), bos_id, dtype=torch.long, device=device)
    history = tokens.new_empty(B, 0)  # (rows, t)
    for t in range(T):
        logits, state, attention = step_fn(tokens, state)
        log_probs = _constrain(_log_probs(logits), history, eos_id, min_length,
                               no_repeat_ngram_size)  # (rows, V)
        best, tokens = log_probs.max(dim=1)  # (rows,) each
        if out_scores is None:
            out_scores = best.new_zeros(B)
            if attention is not None:
                out_attention = attention.new_zeros(B, T, attention.size(1))
        live = rows[running]  # (R,) sentences written at this step
        out_tokens[live, t] = tokens[running]
        out_scores[live] += best[running]
        if out_attention is not None:
            out_attention[live, t] = attention[running]
        ended = running & ((tokens == eos_id) | (t + 1 >= max_lengths[rows]))  # (rows,)
        out_lengths[rows[ended]] = t + 1
        running = running & ~ended
        if not running.any():
            break
        history = torch.cat([history, tokens.unsqueeze(1)], dim=1)  # (rows, t + 1)
        if reorder is not None and not running.all():
            keep = running.nonzero().squeeze(1)  # (R,)
            state = reorder(state, keep)
            rows, tokens, history, running = rows[keep], tokens[keep], history[keep], running[keep]
    return [
        Hypothesis(out_tokens[b, :n].tolist(), float(out_scores[b]), float(out_scores[b]),
                   None if out_attention is None else out_attention[b, :n])
        for b, n in enumerate(out_lengths.tolist())
    ]


@torch.no_grad()
def beam_search(
    step_fn: StepFn,
    state: State,
    *,
    reorder: Reorder,
    bos_id: int,
    eos_id: int,
    max_lengths: torch.Tensor,
    beam_size: int = 5,
    n_best: int = 1,
    length_penalty_alpha: float = 0.0,
    min_length: int = 0,
    no_repeat_ngram_size: int = 0,
) -> list[list[Hypothesis]]:
    """Beam search over B sentences x K beams in one batch of rows, one step per time step.

    Every step, each sentence extends its K open hypotheses by every token and ranks the K*V
    candidates by log-probability. A candidate ending in <eos> (or at the sentence's length
    limit) is finished and, if among the K best, enters the sentence's pool of its ``n_best``
    best finished hypotheses by ``ranking_score``; the K best unfinished candidates stay open.
    A sentence stops when no open hypothesis can still beat the worst of a full pool: an open
    hypothesis of log-probability s can only lose probability, and its length penalty can at
    most grow to lp(max_length), so its best reachable ranking score is s / lp(max_length)
    (s when alpha = 0). The stop is exact for every alpha >= 0: running longer would not change
    the result. Finished sentences leave the batch.

    With ``beam_size=1`` the search returns exactly greedy decoding's hypothesis.

    Args:
        step_fn, state, reorder: the model (module docstring); ``state`` has B rows.
        max_lengths: (B,) integers >= 1.
        beam_size: K >= 1.
        n_best: hypotheses returned per sentence, 1 <= n_best <= K.
        length_penalty_alpha: GNMT alpha >= 0; 0 ranks by log-probability.

    Returns:
        Per sentence, in batch order, up to ``n_best`` hypotheses, best first by
        ``ranking_score``; fewer only if fewer finite-score hypotheses exist.
    """
    _check(bos_id, eos_id, max_lengths, min_length, no_repeat_ngram_size)
    if not isinstance(beam_size, int) or beam_size < 1:
        raise ValueError(f"beam_size must be an integer >= 1, got {beam_size!r}")
    if not isinstance(n_best, int) or not 1 <= n_best <= beam_size:
        raise ValueError(f"n_best must be an integer in [1, beam_size={beam_size}], got {n_best!r}")
    if not length_penalty_alpha >= 0.0:
        raise ValueError(f"length_penalty_alpha must be >= 0, got {length_penalty_alpha!r}")
    B, K, device = max_lengths.numel(), beam_size, max_lengths.device
    T = int(max_lengths.max())
    alpha = float(length_penalty_alpha)
    best_penalty = length_penalty(max_lengths.double(), alpha)  # (B,) lp at the length limit

    # The pool of finished hypotheses, per sentence, best first.
    pool_rank: torch.Tensor | None = None  # (B, n_best) ranking scores, -inf where empty
    pool_score: torch.Tensor | None = None  # (B, n_best)
    pool_tokens = torch.full((B, n_best, T), eos_id, dtype=torch.long, device=device)
    pool_lengths = torch.zeros(B, n_best, dtype=torch.long, device=device)
    pool_attention: torch.Tensor | None = None  # (B, n_best, T, S)

    state = reorder(state, torch.arange(B, device=device).repeat_interleave(K))  # B*K rows
    alive = torch.arange(B, device=device)  # (B',) the sentences still searched
    scores: torch.Tensor | None = None  # (B', K) log-probabilities of the open hypotheses
    history = torch.empty(B, K, 0, dtype=torch.long, device=device)  # (B', K, t)
    att_history: torch.Tensor | None = None  # (B', K, t, S)
    tokens = torch.full((B * K,), bos_id, dtype=torch.long, device=device)
    for t in range(T):
        length = t + 1
        logits, state, attention = step_fn(tokens, state)
        Bc = alive.numel()
        log_probs = _constrain(_log_probs(logits), history.view(Bc * K, t), eos_id, min_length,
                               no_repeat_ngram_size)  # (Bc*K, V)
        V = log_probs.size(1)
        if scores is None:  # the K beams start identical: let only the first one expand
            scores = log_probs.new_full((Bc, K), float("-inf"))
            scores[:, 0] = 0.0
            pool_rank = log_probs.new_full((B, n_best), float("-inf"))
            pool_score = log_probs.new_full((B, n_best), float("-inf"))
            if attention is not None:
                S = attention.size(1)
                pool_attention = attention.new_zeros(B, n_best, T, S)
                att_history = attention.new_zeros(Bc, K, 0, S)
        candidates = (scores.unsqueeze(2) + log_probs.view(Bc, K, V)).view(Bc, K * V)
        top_scores, top_index = candidates.topk(min(2 * K, K * V), dim=1)  # (Bc, 2K), sorted
        top_beam = torch.div(top_index, V, rounding_mode="floor")  # (Bc, 2K)
        top_token = top_index % V  # (Bc, 2K)
        at_limit = length >= max_lengths[alive]  # (Bc,)
        final = (top_token == eos_id) | at_limit.unsqueeze(1)  # (Bc, 2K)
        # A finished candidate counts only among the K best: a beam of K would have kept it.
        new_final = final[:, :K] & top_scores[:, :K].isfinite()  # (Bc, K)

        if new_final.any():
            beams, toks = top_beam[:, :K], top_token[:, :K]  # (Bc, K)
            cand_score = top_scores[:, :K].masked_fill(~new_final, float("-inf"))
            cand_rank = cand_score / length_penalty(length, alpha)  # (Bc, K)
            cand_tokens, cand_att = _extend(history, att_history, attention, beams, toks)
            # Pool first: on equal ranking scores the earlier (shorter) hypothesis stays.
            merged = torch.cat([pool_rank[alive], cand_rank], dim=1)  # (Bc, n_best + K)
            order = merged.sort(dim=1, descending=True, stable=True).indices[:, :n_best]
            pool_rank[alive] = merged.gather(1, order)  # (Bc, n_best)
            pool_score[alive] = _merge(pool_score[alive], cand_score, order)
            pool_lengths[alive] = _merge(pool_lengths[alive], torch.full_like(toks, length),
                                         order)
            padded = cand_tokens.new_full((Bc, K, T), eos_id)
            padded[:, :, :length] = cand_tokens
            pool_tokens[alive] = _merge(pool_tokens[alive], padded, order)  # (Bc, n_best, T)
            if cand_att is not None:
                padded_att = cand_att.new_zeros(Bc, K, T, cand_att.size(3))
                padded_att[:, :, :length] = cand_att
                pool_attention[alive] = _merge(pool_attention[alive], padded_att, order)

        # The K best unfinished candidates stay open (stable: in order of score).
        order = final.to(torch.int8).argsort(dim=1, stable=True)[:, :K]  # (Bc, K)
        scores = top_scores.gather(1, order).masked_fill(final.gather(1, order), float("-inf"))
        beams, new_tokens = top_beam.gather(1, order), top_token.gather(1, order)  # (Bc, K)
        bound = scores[:, 0].double() / best_penalty[alive]  # (Bc,) best reachable ranking
        done = at_limit | (bound <= pool_rank[alive, -1].double())  # (Bc,)
        keep = (~done).nonzero().squeeze(1)  # (B'',) sentences searched further
        if keep.numel() == 0:
            break
        beams, new_tokens = beams[keep], new_tokens[keep]  # (B'', K)
        state = reorder(state, (keep.unsqueeze(1) * K + beams).view(-1))  # B''*K rows
        history, att_history = _extend(
            history[keep], None if att_history is None else att_history[keep],
            None if attention is None else attention.view(Bc, K, -1)[keep], beams, new_tokens)
        scores, alive, tokens = scores[keep], alive[keep], new_tokens.view(-1)

    results = []
    for b in range(B):
        hyps = []
        for j in range(n_best):
            n = int(pool_lengths[b, j])
            if n == 0:
                break
            hyps.append(Hypothesis(
                pool_tokens[b, j, :n].tolist(), float(pool_score[b, j]), float(pool_rank[b, j]),
                None if pool_attention is None else pool_attention[b, j, :n]))
        results.append(hyps)
    return results
