"""Section 6: the seed article's comparison table, each claim marked against the measurements.

The seed (``shared/seed``, section 5, in Chinese) says, per trait, LSTM / GRU / Transformer:

- parameter complexity: high (3 gates) / medium (2 gates) / very high (self-attention);
- long-sequence ability: strong (memory cell) / medium (no separate memory) / strongest (no
  dependence on distance);
- training efficiency: medium / higher / lowest (quadratic complexity);
- hardware needs: medium / (blank) / very high (GPU-intensive).

Each testable statement becomes a ``Claim`` whose verdict comes from per-case outcomes: +1 the
statement holds in that case beyond the margin, -1 it fails beyond the margin, 0 within the
margin. All +1: confirmed; all -1: contradicted; no +1 and no -1: inconclusive; a mix: partly
(the cases it holds in are named). A section that did not run leaves its claims "not measured".
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

NAMES = {"lstm": "LSTM", "gru": "GRU", "transformer": "Transformer"}
TIME_TOLERANCE = 0.05  # relative: timings within 5% are a tie
MEMORY_TOLERANCE = 0.05

SEED_TABLE = [  # trait, LSTM, GRU, Transformer (the seed's words, translated)
    ("parameter complexity", "high (3 gates)", "medium (2 gates)",
     "very high (self-attention)"),
    ("long-sequence ability", "strong (memory cell)", "medium (no separate memory)",
     "strongest (no dependence on distance)"),
    ("training efficiency", "medium", "higher", "lowest (quadratic complexity)"),
    ("hardware needs", "medium", "(blank in the seed)", "very high (GPU-intensive)"),
]


@dataclass
class Claim:
    trait: str
    statement: str  # what is tested, in words
    measured: str  # the numbers it was decided on
    verdict: str  # confirmed | contradicted | partly | inconclusive | not measured


def outcome(value: float, rivals: Sequence[float], margin: float) -> int:
    """+1 if value exceeds every rival by more than margin, -1 if some rival exceeds it by more
    than margin, else 0."""
    best = max(rivals)
    if value > best + margin:
        return 1
    if value < best - margin:
        return -1
    return 0


def relative_outcome(value: float, rivals: Sequence[float], tolerance: float) -> int:
    """``outcome`` with the margin a fraction of the larger of value and the best rival."""
    return outcome(value, rivals, tolerance * max(abs(value), abs(max(rivals))))


def verdict(outcomes: Sequence[int], cases: Sequence[str] = ()) -> str:
    if not outcomes:
        return "not measured"
    if all(o == 1 for o in outcomes):
        return "confirmed"
    if all(o == -1 for o in outcomes):
        return "contradicted"
    if not any(o == 1 for o in outcomes):
        if not any(o == -1 for o in outcomes):
            return "inconclusive"
        ties = [c for c, o in zip(cases, outcomes, strict=False) if o == 0]
        return "contradicted" + (f" (a tie at {', '.join(ties)})" if ties else "")
    held = [c for c, o in zip(cases, outcomes, strict=False) if o == 1]
    return "partly" + (f" (holds at {', '.join(held)})" if held else "")


def _fmt(value: float, digits: int = 3) -> str:
    return f"{value:,.{digits}f}"


# ----------------------------------------------------------------------------- parameters
def parameter_claims(params: dict[str, Any] | None) -> list[Claim]:
    trait = "parameter complexity"
    if not params:
        return [Claim(trait, s, "-", "not measured") for s in
                ("LSTM layer > GRU layer at equal width",
                 "Transformer layer the largest at equal width")]
    widths = list(params["equal_width"])
    counts = params["equal_width"]
    measured = "; ".join(f"d={w}: " + ", ".join(f"{NAMES[k]} {counts[w][k]:,}" for k in NAMES)
                         for w in widths)
    lstm_gru = [outcome(counts[w]["lstm"], [counts[w]["gru"]], 0) for w in widths]
    largest = [outcome(counts[w]["transformer"], [counts[w]["lstm"], counts[w]["gru"]], 0)
               for w in widths]
    cases = [f"d={w}" for w in widths]
    return [Claim(trait, "LSTM layer > GRU layer at equal width", measured,
                  verdict(lstm_gru, cases)),
            Claim(trait, "Transformer layer the largest at equal width "
                  "(feed-forward 4d)", measured, verdict(largest, cases))]


# ----------------------------------------------------------------------------- long range
def long_distances(long_range: dict[str, Any]) -> list[int]:
    """The two longest distances measured: 'long-sequence ability' is judged there."""
    return sorted({r["distance"] for r in long_range["rows"]})[-2:]


def run_init(row: dict[str, Any]) -> str:
    """The init of a long-range run: "default" or "chrono" (rows saved before there was a
    choice have no ``init`` and ran the default)."""
    return row.get("init", "default")


def long_range_accuracy(long_range: dict[str, Any], init: str | None = None
                        ) -> dict[str, float]:
    """Mean accuracy of each kind over ``long_distances``: with ``init`` ("default" or
    "chrono"), of that init's runs (kinds without such runs left out); without, of each kind's
    best init, so that a kind is judged at its best known recipe."""
    keep = set(long_distances(long_range))
    runs: dict[str, dict[str, list[float]]] = {}  # kind -> init -> accuracies at ``keep``
    for r in long_range["rows"]:
        if r["distance"] in keep and init in (None, run_init(r)):
            runs.setdefault(r["kind"], {}).setdefault(run_init(r), []).append(r["accuracy"])
    means = {kind: {i: statistics.fmean(a) for i, a in by_init.items()}
             for kind, by_init in runs.items()}
    return {kind: max(m.values()) for kind, m in means.items()}


def long_range_claims(long_range: dict[str, Any] | None) -> list[Claim]:
    trait = "long-sequence ability"
    statements = ("Transformer the best at long distances", "LSTM better than GRU")
    if not long_range or not long_range.get("rows"):
        return [Claim(trait, s, "-", "not measured") for s in statements]
    acc = long_range_accuracy(long_range)
    default = long_range_accuracy(long_range, "default")
    chrono = long_range_accuracy(long_range, "chrono")
    margin = long_range["margin"]
    distances = long_distances(long_range)
    shown = ", ".join(f"{NAMES[k]} {_fmt(default[k])}"
                      + (f" (chrono init {_fmt(chrono[k])})" if k in chrono else "")
                      for k in NAMES)
    measured = (f"mean accuracy at d = {', '.join(f'{d:,}' for d in distances)}, each kind "
                f"judged at its better init: {shown} (chance {_fmt(long_range['chance'])}, "
                f"margin {_fmt(margin)})")
    return [Claim(trait, statements[0], measured,
                  verdict([outcome(acc["transformer"], [acc["lstm"], acc["gru"]], margin)])),
            Claim(trait, statements[1], measured,
                  verdict([outcome(acc["lstm"], [acc["gru"]], margin)]))]


# ----------------------------------------------------------------------------- efficiency
def _times(cost: dict[str, Any]) -> dict[int, dict[str, float]]:
    out: dict[int, dict[str, float]] = {}
    for r in cost["rows"]:
        out.setdefault(r["T"], {})[r["kind"]] = r["seconds"]
    return dict(sorted(out.items()))


def _memory(cost: dict[str, Any]) -> dict[int, dict[str, float]]:
    out: dict[int, dict[str, float]] = {}
    for r in cost["rows"]:
        out.setdefault(r["T"], {})[r["kind"]] = r["memory_bytes"]
    return dict(sorted(out.items()))


def efficiency_claims(cost: dict[str, Any] | None, quality: dict[str, Any] | None,
                      device: str) -> list[Claim]:
    trait = "training efficiency"
    claims = []
    if cost and cost.get("rows"):
        times = _times(cost)
        cases = [f"T={T:,}" for T in times]
        measured = "; ".join(f"T={T:,}: " + ", ".join(f"{NAMES[k]} {1e3 * t[k]:,.1f} ms"
                                                      for k in NAMES)
                             for T, t in times.items())
        measured = f"{device}, fwd+bwd per batch of {cost['tokens']:,} tokens: {measured}"
        # The seed ranks GRU > LSTM > Transformer; each pair is a statement of its own, so
        # that one slow kernel (the GRU's on CPU) does not decide another pair's verdict.
        for fast, slow in (("gru", "lstm"), ("lstm", "transformer"), ("gru", "transformer")):
            outcomes = [relative_outcome(t[slow], [t[fast]], TIME_TOLERANCE)
                        for t in times.values()]
            claims.append(Claim(trait, f"{NAMES[fast]} trains faster than {NAMES[slow]} (time "
                                "per token, equal parameters)", measured,
                                verdict(outcomes, cases)))
    else:
        claims += [Claim(trait, f"{NAMES[fast]} trains faster than {NAMES[slow]} (time per "
                         "token)", "-", "not measured")
                   for fast, slow in (("gru", "lstm"), ("lstm", "transformer"),
                                      ("gru", "transformer"))]
    datasets = [d for d in (quality or {}).get("datasets", [])
                if d.get("rows") and all("value" in r and r["value"] is not None
                                         for r in d["rows"])]
    statement = "Transformer the worst at equal wall time (quality)"
    if not datasets:
        claims.append(Claim(trait, statement, "-", "not measured"))
        return claims
    outcomes, cases, parts = [], [], []
    for d in datasets:
        value = {r["kind"]: r["value"] for r in d["rows"]}
        sign = -1 if d["higher_is_better"] else 1  # badness: higher is worse
        outcomes.append(outcome(sign * value["transformer"],
                                [sign * value["lstm"], sign * value["gru"]], d["margin"]))
        cases.append(d["name"])
        parts.append(f"{d['name']} {d['metric']} in {d['budget_s']:,} s of training: "
                     + ", ".join(f"{NAMES[k]} {_fmt(value[k])}" for k in NAMES))
    claims.append(Claim(trait, statement, "; ".join(parts), verdict(outcomes, cases)))
    return claims


def hardware_claims(cost: dict[str, Any] | None, device: str) -> list[Claim]:
    trait = "hardware needs"
    statement = "Transformer needs the most memory (peak, training, equal parameters)"
    if not cost or not cost.get("rows"):
        return [Claim(trait, statement, "-", "not measured")]
    memory = _memory(cost)
    if any(v <= 0 for m in memory.values() for v in m.values()):
        return [Claim(trait, statement, "peak memory not measured on this device",
                      "not measured")]
    cases = [f"T={T:,}" for T in memory]
    measured = f"{device}: " + "; ".join(
        f"T={T:,}: " + ", ".join(f"{NAMES[k]} {m[k] / 2**20:,.1f} MB" for k in NAMES)
        for T, m in memory.items())
    outcomes = [relative_outcome(m["transformer"], [m["lstm"], m["gru"]], MEMORY_TOLERANCE)
                for m in memory.values()]
    return [Claim(trait, statement, measured, verdict(outcomes, cases))]


def all_claims(sections: dict[str, Any], device: str) -> list[Claim]:
    return [*parameter_claims(sections.get("params")),
            *long_range_claims(sections.get("long_range")),
            *efficiency_claims(sections.get("cost"), sections.get("quality"), device),
            *hardware_claims(sections.get("cost"), device)]
