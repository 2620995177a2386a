"""Greedy decoding and batched beam search in numpy, for the ONNX runtime: the algorithm and the
rules of ``nlp_lstm.nn.decoding`` (read its docstring), step for step, so that an exported
model decodes as its checkpoint does: the GNMT length penalty, per-sentence ``max_lengths``,
``min_length``, ``no_repeat_ngram_size``, n-best pools, the exact stop of a sentence, finished
sentences leaving the batch, and the same tie-breaking (stable sorts, first index first).

The step function returns log-probabilities (the exported decoder computes its log-softmax in
float32, where the PyTorch path applies it to the logits), and the state is whatever the
``reorder`` function indexes.

Legend: B batch (sentences), K beam size, N rows (B or B*K), V vocabulary, S source length,
T hypothesis length.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from nlp_lstm.inference import length_penalty

State = Any
StepFn = Callable[[np.ndarray, State], tuple[np.ndarray, State, np.ndarray | None]]
Reorder = Callable[[State, np.ndarray], State]
NEG_INF = np.float32(-np.inf)


@dataclass(frozen=True)
class Hypothesis:
    """One decoded sequence, as ``nlp_lstm.nn.decoding.Hypothesis`` (attention (T, S) numpy)."""

    tokens: list[int]
    score: float
    ranking_score: float
    attention: np.ndarray | None


def _constrain(log_probs: np.ndarray, history: np.ndarray, eos_id: int, min_length: int,
               no_repeat_ngram_size: int) -> np.ndarray:
    """-inf for <eos> before ``min_length`` tokens and for tokens that repeat an n-gram.
    log_probs (N, V), history (N, t)."""
    t, n = history.shape[1], no_repeat_ngram_size
    if t < min_length:
        log_probs = log_probs.copy()
        log_probs[:, eos_id] = NEG_INF
    if n > 0 and t >= n:
        grams = np.lib.stride_tricks.sliding_window_view(history, n, axis=1)  # (N, t-n+1, n)
        suffix = history[:, t - n + 1 :]  # (N, n - 1)
        seen = (grams[:, :, :-1] == suffix[:, None, :]).all(axis=2)  # (N, t - n + 1)
        hits = np.zeros(log_probs.shape, dtype=bool)  # (N, V)
        rows, cols = np.nonzero(seen)
        hits[rows, grams[rows, cols, -1]] = True
        log_probs = np.where(hits, NEG_INF, log_probs)
    return log_probs


def _top(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest of each row (B, n), largest first, ties by lower index -> values, index."""
    n = values.shape[1]
    if k < n:
        part = np.argpartition(-values, k - 1, axis=1)[:, :k]  # (B, k), unordered
    else:
        part = np.broadcast_to(np.arange(n), values.shape)
    picked = np.take_along_axis(values, part, axis=1)
    order = np.lexsort((part, -picked), axis=1)  # by value descending, then index
    index = np.take_along_axis(part, order, axis=1)
    return np.take_along_axis(values, index, axis=1), index


def _extend(history: np.ndarray, att_history: np.ndarray | None, attention: np.ndarray | None,
            beams: np.ndarray, new_tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """history (B, K, t), att_history (B, K, t, S), attention (B*K or B, K, S), beams and
    new_tokens (B, C) -> tokens (B, C, t + 1), attention (B, C, t + 1, S) or None."""
    B = beams.shape[0]
    tokens = np.concatenate([np.take_along_axis(history, beams[:, :, None], axis=1),
                             new_tokens[:, :, None]], axis=2)  # (B, C, t + 1)
    if att_history is None or attention is None:
        return tokens, None
    S = att_history.shape[3]
    attention = attention.reshape(B, -1, S)  # (B, K, S)
    att = np.concatenate([np.take_along_axis(att_history, beams[:, :, None, None], axis=1),
                          np.take_along_axis(attention, beams[:, :, None], axis=1)[:, :, None]],
                         axis=2)  # (B, C, t + 1, S)
    return tokens, att


def _merge(old: np.ndarray, new: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``order`` (B, P) indexes the concatenation of old (B, P, ...) and new (B, C, ...)."""
    merged = np.concatenate([old, new], axis=1)
    index = order.reshape(*order.shape, *[1] * (old.ndim - 2))
    return np.take_along_axis(merged, index, axis=1)


def greedy(step_fn: StepFn, state: State, *, bos_id: int, eos_id: int,
           max_lengths: np.ndarray, min_length: int = 0, no_repeat_ngram_size: int = 0,
           reorder: Reorder | None = None) -> list[Hypothesis]:
    """The most probable token at every step, for B sentences (``nn.decoding.greedy``)."""
    B = len(max_lengths)
    T = int(max_lengths.max())
    out_tokens = np.full((B, T), eos_id, dtype=np.int64)
    out_lengths = np.zeros(B, dtype=np.int64)
    out_scores: np.ndarray | None = None
    out_attention: np.ndarray | None = None
    rows = np.arange(B)
    running = np.ones(B, dtype=bool)
    tokens = np.full(B, bos_id, dtype=np.int64)
    history = np.zeros((B, 0), dtype=np.int64)
    for t in range(T):
        log_probs, state, attention = step_fn(tokens, state)
        log_probs = _constrain(log_probs, history, eos_id, min_length, no_repeat_ngram_size)
        tokens = log_probs.argmax(axis=1)  # (rows,)
        best = np.take_along_axis(log_probs, tokens[:, None], axis=1)[:, 0]
        if out_scores is None:
            out_scores = np.zeros(B, dtype=best.dtype)
            if attention is not None:
                out_attention = np.zeros((B, T, attention.shape[1]), dtype=attention.dtype)
        live = rows[running]
        out_tokens[live, t] = tokens[running]
        out_scores[live] += best[running]
        if out_attention is not None:
            out_attention[live, t] = attention[running]
        ended = running & ((tokens == eos_id) | (t + 1 >= max_lengths[rows]))
        out_lengths[rows[ended]] = t + 1
        running = running & ~ended
        if not running.any():
            break
        history = np.concatenate([history, tokens[:, None]], axis=1)
        if reorder is not None and not running.all():
            keep = np.nonzero(running)[0]
            state = reorder(state, keep)
            rows, tokens, history, running = rows[keep], tokens[keep], history[keep], running[keep]
    return [Hypothesis(out_tokens[b, :n].tolist(), float(out_scores[b]), float(out_scores[b]),
                       None if out_attention is None else out_attention[b, :n])
            for b, n in enumerate(out_lengths.tolist())]


def beam_search(step_fn: StepFn, state: State, *, reorder: Reorder, bos_id: int, eos_id: int,
                max_lengths: np.ndarray, beam_size: int = 5, n_best: int = 1,
                length_penalty_alpha: float = 0.0, min_length: int = 0,
                no_repeat_ngram_size: int = 0) -> list[list[Hypothesis]]:
    """Beam search over B sentences x K beams in one batch of rows
    (``nn.decoding.beam_search``, whose docstring states the rules)."""
    if not isinstance(beam_size, int) or beam_size < 1:
        raise ValueError(f"beam_size must be an integer >= 1, got {beam_size!r}")
    if not isinstance(n_best, int) or not 1 <= n_best <= beam_size:
        raise ValueError(f"n_best must be an integer in [1, beam_size={beam_size}], got {n_best!r}")
    if not length_penalty_alpha >= 0.0:
        raise ValueError(f"length_penalty_alpha must be >= 0, got {length_penalty_alpha!r}")
    B, K = len(max_lengths), beam_size
    T = int(max_lengths.max())
    alpha = float(length_penalty_alpha)
    best_penalty = length_penalty(max_lengths.astype(np.float64), alpha)  # (B,)

    pool_rank: np.ndarray | None = None  # (B, n_best)
    pool_score: np.ndarray | None = None
    pool_tokens = np.full((B, n_best, T), eos_id, dtype=np.int64)
    pool_lengths = np.zeros((B, n_best), dtype=np.int64)
    pool_attention: np.ndarray | None = None  # (B, n_best, T, S)

    state = reorder(state, np.repeat(np.arange(B), K))  # B*K rows
    alive = np.arange(B)
    scores: np.ndarray | None = None  # (B', K)
    history = np.zeros((B, K, 0), dtype=np.int64)
    att_history: np.ndarray | None = None
    tokens = np.full(B * K, bos_id, dtype=np.int64)
    for t in range(T):
        length = t + 1
        log_probs, state, attention = step_fn(tokens, state)
        Bc = len(alive)
        log_probs = _constrain(log_probs, history.reshape(Bc * K, t), eos_id, min_length,
                               no_repeat_ngram_size)  # (Bc*K, V)
        V = log_probs.shape[1]
        if scores is None:  # the K beams start identical: only the first one expands
            scores = np.full((Bc, K), NEG_INF, dtype=log_probs.dtype)
            scores[:, 0] = 0.0
            pool_rank = np.full((B, n_best), NEG_INF, dtype=log_probs.dtype)
            pool_score = np.full((B, n_best), NEG_INF, dtype=log_probs.dtype)
            if attention is not None:
                S = attention.shape[1]
                pool_attention = np.zeros((B, n_best, T, S), dtype=attention.dtype)
                att_history = np.zeros((Bc, K, 0, S), dtype=attention.dtype)
        candidates = (scores[:, :, None] + log_probs.reshape(Bc, K, V)).reshape(Bc, K * V)
        top_scores, top_index = _top(candidates, min(2 * K, K * V))  # (Bc, 2K)
        top_beam, top_token = top_index // V, top_index % V
        at_limit = length >= max_lengths[alive]  # (Bc,)
        final = (top_token == eos_id) | at_limit[:, None]  # (Bc, 2K)
        new_final = final[:, :K] & np.isfinite(top_scores[:, :K])  # (Bc, K)

        if new_final.any():
            beams, toks = top_beam[:, :K], top_token[:, :K]
            cand_score = np.where(new_final, top_scores[:, :K], NEG_INF)
            cand_rank = cand_score / np.float32(length_penalty(length, alpha))
            cand_tokens, cand_att = _extend(history, att_history, attention, beams, toks)
            merged = np.concatenate([pool_rank[alive], cand_rank], axis=1)  # (Bc, n_best + K)
            order = np.argsort(-merged, axis=1, kind="stable")[:, :n_best]
            pool_rank[alive] = np.take_along_axis(merged, order, axis=1)
            pool_score[alive] = _merge(pool_score[alive], cand_score, order)
            pool_lengths[alive] = _merge(pool_lengths[alive], np.full_like(toks, length), order)
            padded = np.full((Bc, K, T), eos_id, dtype=np.int64)
            padded[:, :, :length] = cand_tokens
            pool_tokens[alive] = _merge(pool_tokens[alive], padded, order)
            if cand_att is not None:
                padded_att = np.zeros((Bc, K, T, cand_att.shape[3]), dtype=cand_att.dtype)
                padded_att[:, :, :length] = cand_att
                pool_attention[alive] = _merge(pool_attention[alive], padded_att, order)

        order = np.argsort(final.astype(np.int8), axis=1, kind="stable")[:, :K]  # (Bc, K)
        scores = np.where(np.take_along_axis(final, order, axis=1), NEG_INF,
                          np.take_along_axis(top_scores, order, axis=1))
        beams = np.take_along_axis(top_beam, order, axis=1)
        new_tokens = np.take_along_axis(top_token, order, axis=1)
        bound = scores[:, 0].astype(np.float64) / best_penalty[alive]  # (Bc,)
        done = at_limit | (bound <= pool_rank[alive, -1].astype(np.float64))
        keep = np.nonzero(~done)[0]
        if len(keep) == 0:
            break
        beams, new_tokens = beams[keep], new_tokens[keep]
        state = reorder(state, (keep[:, None] * K + beams).reshape(-1))
        history, att_history = _extend(
            history[keep], None if att_history is None else att_history[keep],
            None if attention is None else attention.reshape(Bc, K, -1)[keep], beams, new_tokens)
        scores, alive, tokens = scores[keep], alive[keep], new_tokens.reshape(-1)

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
