"""Section 5: generation cost per token against the context length.

Three ``LanguageModelNet``s of equal parameters (the LSTM of ``lstm_width`` x ``layers`` as the
reference; the GRU and the causal Transformer of ``layers`` layers at the widths that match its
parameters without the token embedding), untrained (speed does not depend on the weights). For
each context c: a random prompt of c tokens is read in one ``prompt`` call (not timed), then
``tokens`` greedy ``step`` calls continue from the returned state (the LSTM's (h, c), the
Transformer's key/value cache, ``LMState.cache``), timed; the cost per token is the mean of one
run, best of ``rounds`` (each round restarts from the same prompted state: the states are
values, never modified). The Transformer's ``max_length`` is the largest context plus
``tokens``, so its cache never shrinks here: a step attends to all c + t earlier tokens.

Legend: B batch, c context length, V vocabulary.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from benchmarks.compare.cost import fit_exponent
from benchmarks.compare.params import KINDS, NHEAD, params_without, solve_width
from benchmarks.encoder import sync
from nlp_lstm.generation.net import LanguageModelNet, LMState

VOCAB = 69  # Tiny Shakespeare's characters and the specials


def encoder_settings(kind: str, width: int, layers: int, max_length: int) -> dict[str, Any]:
    if kind == "transformer":
        return {"kind": "transformer", "hidden_size": width, "num_layers": layers,
                "nhead": NHEAD, "max_length": max_length}
    return {"hidden_size": width, "num_layers": layers, "cell": kind}


def build(kind: str, width: int, layers: int, embedding: int, max_length: int
          ) -> LanguageModelNet:
    return LanguageModelNet(VOCAB, embedding_dim=embedding,
                            encoder=encoder_settings(kind, width, layers, max_length)).eval()


def params(kind: str, width: int, layers: int, embedding: int) -> int:
    net = build(kind, width, layers, embedding, 16)
    return params_without(net, {"embedding": net.embedding.weight})


def widths_at_equal_params(lstm_width: int, layers: int, embedding: int) -> dict[str, int]:
    target = params("lstm", lstm_width, layers, embedding)
    return {kind: lstm_width if kind == "lstm" else
            solve_width(lambda w, k=kind: params(k, w, layers, embedding), target,
                        NHEAD if kind == "transformer" else 1)
            for kind in KINDS}


@torch.no_grad()
def per_token(net: LanguageModelNet, state: LMState, logits: torch.Tensor, tokens: int,
              device: torch.device) -> float:
    """Seconds per greedy step over ``tokens`` steps from (logits, state)."""
    sync(device)
    start = time.perf_counter()
    for _ in range(tokens):
        logits, state = net.step(logits.argmax(-1), state)  # (B, V)
    sync(device)
    return (time.perf_counter() - start) / tokens


@torch.no_grad()
def measure(contexts: Sequence[int], *, lstm_width: int, layers: int, embedding: int,
            tokens: int, rounds: int, batch: int, device: torch.device,
            log: Callable[[str], None] = print) -> dict[str, Any]:
    widths = widths_at_equal_params(lstm_width, layers, embedding)
    max_length = max(contexts) + tokens
    torch.manual_seed(0)
    nets = {kind: build(kind, widths[kind], layers, embedding, max_length).to(device)
            for kind in KINDS}
    generator = torch.Generator().manual_seed(0)
    cases = []
    for c in contexts:
        prompt = torch.randint(0, VOCAB, (batch, c), generator=generator).to(device)  # (B, c)
        for kind, net in nets.items():
            logits, state = net.prompt(prompt)  # (B, V)
            per_token(net, state, logits, min(tokens, 4), device)  # warm-up, unmeasured
            cases.append({"kind": kind, "context": c, "net": net, "state": state,
                          "logits": logits, "times": []})
    for round_ in range(rounds):  # rounds over all cases: load drifts hit every row alike
        for case in cases:
            case["times"].append(per_token(case["net"], case["state"], case["logits"], tokens,
                                           device))
        log(f"  generation: round {round_ + 1}/{rounds} done")
    rows = [{"kind": case["kind"], "context": case["context"],
             "ms_per_token": 1e3 * min(case["times"])} for case in cases]
    fits = {}
    for kind in KINDS:
        mine = [r for r in rows if r["kind"] == kind]
        fits[kind] = (fit_exponent([r["context"] for r in mine],
                                   [r["ms_per_token"] for r in mine])[0]
                      if len(mine) > 1 else None)
    return {"widths": widths, "layers": layers, "embedding": embedding, "batch": batch,
            "tokens": tokens, "rounds": rounds,
            "params": {kind: params(kind, w, layers, embedding) for kind, w in widths.items()},
            "rows": rows, "fits": fits}
