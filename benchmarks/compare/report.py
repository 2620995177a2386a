"""The report: markdown tables of every section, the claims, the advice derived from the numbers,
and the plots. Everything here reads the results mapping that ``__main__`` builds (also written
as JSON next to the report), so a report can be re-rendered from saved measurements.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.compare.claims import (
    NAMES,
    SEED_TABLE,
    TIME_TOLERANCE,
    all_claims,
    long_distances,
    long_range_accuracy,
    run_init,
)
from benchmarks.compare.long_range import PREFIX

MASTERY = 0.9  # the accuracy at which a distance counts as learnt, in the advice


def _kinds(values: dict[str, Any]) -> str:
    return ", ".join(f"{NAMES[k]} {v}" for k, v in values.items())


def duration(seconds: float) -> str:
    """A budget in words: seconds below two minutes, else minutes."""
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.3g} min"


def winner(values: dict[str, float], higher_is_better: bool, margin: float) -> list[str]:
    """The best kind, and every kind within ``margin`` of it (a tie), best first."""
    ordered = sorted(values, key=values.get, reverse=higher_is_better)
    best = values[ordered[0]]
    return [k for k in ordered if abs(values[k] - best) <= margin]


def _names(kinds: Sequence[str]) -> str:
    names = [NAMES[k] for k in kinds]
    return names[0] if len(names) == 1 else " or ".join(names) + " (a tie within the margin)"


# ------------------------------------------------------------------------------- sections
def _params_md(p: dict[str, Any]) -> list[str]:
    lines = ["| width d | LSTM | GRU | Transformer | GRU / LSTM | Transformer / LSTM |",
             "|---:|---:|---:|---:|---:|---:|"]
    for d, c in p["equal_width"].items():
        lines.append(f"| {int(d):,} | {c['lstm']:,} | {c['gru']:,} | {c['transformer']:,} | "
                     f"{c['gru'] / c['lstm']:.2f} | {c['transformer'] / c['lstm']:.2f} |")
    lines += ["", "Widths of equal parameters (the nearest count; Transformer widths are "
              "multiples of its 4 heads):", "",
              "| reference layer | its parameters | LSTM width | GRU width | Transformer width |",
              "|---|---:|---:|---:|---:|"]
    for label, key, ref in (("Transformer", "match_transformer", "transformer"),
                            ("LSTM", "match_lstm", "lstm")):
        for d, m in p[key].items():
            cells = " | ".join(f"{m[k]['width']:,} ({m[k]['params']:,})" for k in NAMES)
            lines.append(f"| {label}, d = {int(d):,} | {m[ref]['params']:,} | {cells} |")
    return lines


def _cost_md(c: dict[str, Any]) -> list[str]:
    w = c["widths"]
    lines = [f"Widths: Transformer d = {w['transformer']}, LSTM {w['lstm']}, GRU {w['gru']} "
             f"(parameters: {_kinds({k: f'{v:,}' for k, v in c['params'].items()})}); "
             f"{c['tokens']:,} tokens per batch; median of {c['runs']} runs after "
             f"{c['warmup']} warm-up round(s).", "",
             "| T | B | LSTM ms | GRU ms | Transformer ms | Transformer / LSTM time | "
             "LSTM MB | GRU MB | Transformer MB |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    by_t: dict[int, dict[str, dict[str, Any]]] = {}
    for r in c["rows"]:
        by_t.setdefault(r["T"], {})[r["kind"]] = r
    for T, rows in sorted(by_t.items()):
        ms = {k: 1e3 * rows[k]["seconds"] for k in NAMES}
        mb = {k: rows[k]["memory_bytes"] / 2**20 for k in NAMES}
        lines.append(f"| {T:,} | {rows['lstm']['B']:,} | {ms['lstm']:,.1f} | {ms['gru']:,.1f} | "
                     f"{ms['transformer']:,.1f} | {ms['transformer'] / ms['lstm']:.2f} | "
                     f"{mb['lstm']:,.1f} | {mb['gru']:,.1f} | {mb['transformer']:,.1f} |")
    lengths = sorted(by_t)
    a, b = lengths[-2:] if len(lengths) > 1 else (lengths[0], lengths[0])
    lines += ["", "Fitted exponents (least squares of log y on log T over the lengths above; the "
              "last column from the two longest lengths only, where attention's T^2 weighs "
              "most):", "",
              "| layer | time per batch (constant tokens) ~ T^a | time per sequence ~ T^(a+1) | "
              f"peak memory per batch ~ T^m | a from T = {a:,} to {b:,} |",
              "|---|---:|---:|---:|---:|"]
    for k in NAMES:
        f = c["fits"][k]
        m = "-" if f["memory_per_batch"] is None else f"{f['memory_per_batch']:.2f}"
        tail = ("-" if a == b else
                f"{math.log(by_t[b][k]['seconds'] / by_t[a][k]['seconds']) / math.log(b / a):.2f}")
        lines.append(f"| {NAMES[k]} | {f['time_per_batch']:.2f} | {f['time_per_sequence']:.2f} "
                     f"| {m} | {tail} |")
    return lines


def _lr_runs(lr: dict[str, Any]) -> list[tuple[str, str]]:
    """(kind, init) of the runs, in table order: the three at their default init, then chrono."""
    present = {(r["kind"], run_init(r)) for r in lr["rows"]}
    return [(k, i) for i in ("default", "chrono") for k in NAMES if (k, i) in present]


def _run_name(kind: str, init: str) -> str:
    return NAMES[kind] + (" chrono" if init == "chrono" else "")


def _long_range_md(lr: dict[str, Any]) -> list[str]:
    w = lr["widths"]
    runs = _lr_runs(lr)
    lines = [f"Encoder widths {_kinds(w)} (encoder parameters "
             f"{_kinds({k: f'{v:,}' for k, v in lr['encoder_params'].items()})}), embedding "
             f"{lr['embedding']}, {lr['signals']} signal and {lr['noise']} noise symbols (chance "
             f"{lr['chance']:.3f}), {lr['steps']:,} steps of batch {lr['batch']} (AdamW "
             f"{lr['lr']}), accuracy on {lr['eval_size']:,} held-out sequences (two standard "
             f"errors: {lr['margin']:.3f}). LSTM and GRU at the default init (LSTM forget-gate "
             "bias 1.0) and, as \"chrono\", with chrono gate biases (Tallec & Ollivier 2018; "
             "`init=chrono`, `max_timescale` = T).", "",
             "| d | T | " + " | ".join(f"{_run_name(*r)} acc" for r in runs)
             + " | training s (" + " / ".join(_run_name(*r) for r in runs) + ") |",
             "|---:|---:|" + "---:|" * len(runs) + "---|"]
    by_d: dict[int, dict[tuple[str, str], dict[str, Any]]] = {}
    for r in lr["rows"]:
        by_d.setdefault(r["distance"], {})[(r["kind"], run_init(r))] = r
    for d, rows in sorted(by_d.items()):
        acc = " | ".join(f"{rows[r]['accuracy']:.3f}" if r in rows else "-" for r in runs)
        secs = " / ".join(f"{rows[r]['seconds']:,.0f}" if r in rows else "-" for r in runs)
        T = next(iter(rows.values()))["T"]
        lines.append(f"| {d:,} | {T:,} | {acc} | {secs} |")
    return lines


def _quality_md(q: dict[str, Any]) -> list[str]:
    lines = []
    for d in q["datasets"]:
        lines += [f"**{d['name']}** ({d['metric']}, "
                  f"{'higher' if d['higher_is_better'] else 'lower'} is better; budget "
                  f"{duration(d['budget_s'])} per model, `trainer.max_time`, validation "
                  "included):", ""]
        if "skipped" in d:
            lines += [f"Skipped: {d['skipped']}.", ""]
            continue
        lines += ["| encoder | width | layers | parameters (no embedding) | "
                  f"{d['metric']} | steps | epochs | tokens/s | whole command s |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in d["rows"]:
            if "error" in r:
                lines.append(f"| {NAMES[r['kind']]} | {r['width']} | {r['layers']} | "
                             f"{r['params']:,} | failed: {r['error']} | | | | |")
                continue
            tps = f"{r['tokens_per_s']:,.0f}" if r.get("tokens_per_s") else "-"
            value = "-" if r.get("value") is None else f"{r['value']:.4f}"
            lines.append(f"| {NAMES[r['kind']]} | {r['width']} | {r['layers']} | "
                         f"{r['params']:,} | {value} | {r.get('steps', '-')} | "
                         f"{r.get('epochs', '-')} | {tps} | {r['wall_s']:,.0f} |")
        lines += ["", "Commands (from the project root):", "", "```"]
        lines += [f"python {r['command']}" for r in d["rows"]]
        lines += ["```", ""]
    return lines


def _generation_md(g: dict[str, Any]) -> list[str]:
    layers = f"{g['layers']} layer" + ("s" if g["layers"] != 1 else "")
    lines = [f"Language models of {layers}, embedding {g['embedding']}, widths "
             f"{_kinds(g['widths'])} (parameters without the embedding "
             f"{_kinds({k: f'{v:,}' for k, v in g['params'].items()})}); batch {g['batch']}, "
             f"{g['tokens']} greedy steps after the prompt, best of {g['rounds']} rounds.", "",
             "| context | LSTM ms/token | GRU ms/token | Transformer ms/token | "
             "Transformer / LSTM |", "|---:|---:|---:|---:|---:|"]
    by_c: dict[int, dict[str, float]] = {}
    for r in g["rows"]:
        by_c.setdefault(r["context"], {})[r["kind"]] = r["ms_per_token"]
    for c, ms in sorted(by_c.items()):
        lines.append(f"| {c:,} | {ms['lstm']:.3f} | {ms['gru']:.3f} | {ms['transformer']:.3f} | "
                     f"{ms['transformer'] / ms['lstm']:.2f} |")
    fits = {k: ("-" if v is None else f"{v:.2f}") for k, v in g["fits"].items()}
    lines += ["", f"Fitted exponent of ms/token in the context: {_kinds(fits)}."]
    return lines


# --------------------------------------------------------------------------------- advice
def advice(sections: dict[str, Any], device: str) -> tuple[list[str], list[str]]:
    """Sentences derived from the measurements, one per section that ran, and the choices they
    point to ("<situation>: <kind>")."""
    out: list[str] = []
    choose: list[str] = []
    p = sections.get("params")
    if p:
        d = list(p["equal_width"])[-1]
        c = p["equal_width"][d]
        m = p["match_transformer"][d]
        fewest = min(c, key=c.get)
        out.append(f"At equal width (d = {int(d):,}) a Transformer layer holds "
                   f"{c['transformer'] / c['lstm']:.2f}x the parameters of an LSTM layer and a "
                   f"GRU layer {c['gru'] / c['lstm']:.2f}x; for the parameters of that "
                   f"Transformer layer an LSTM can be {m['lstm']['width']:,} wide and a GRU "
                   f"{m['gru']['width']:,}.")
        choose.append(f"the fewest parameters at a given width: {NAMES[fewest]}")
    cost = sections.get("cost")
    if cost and cost.get("rows"):
        times: dict[int, dict[str, float]] = {}
        for r in cost["rows"]:
            times.setdefault(r["T"], {})[r["kind"]] = r["seconds"]
        cheaper = [T for T, t in sorted(times.items()) if t["transformer"] < t["lstm"]]
        dearer = [T for T, t in sorted(times.items()) if t["transformer"] >= t["lstm"]]
        if not dearer:
            where = f"costs less than the LSTM's at every length measured (up to {max(times):,})"
        elif not cheaper:
            where = f"costs more than the LSTM's at every length measured (from {min(times):,})"
        else:
            where = (f"costs less than the LSTM's at T = {', '.join(f'{T:,}' for T in cheaper)}"
                     f" and more at T = {', '.join(f'{T:,}' for T in dearer)}")
        f = cost["fits"]
        out.append(f"On {device}, at equal parameters and {cost['tokens']:,} tokens per batch, "
                   f"a training step of the Transformer layer {where}; its time grows as "
                   f"T^{f['transformer']['time_per_batch']:.2f} against "
                   f"T^{f['lstm']['time_per_batch']:.2f} (LSTM) and "
                   f"T^{f['gru']['time_per_batch']:.2f} (GRU).")
        longest = max(times)
        fastest = winner({k: -v for k, v in times[longest].items()}, True,
                         TIME_TOLERANCE * min(times[longest].values()))
        choose.append(f"training on sequences of {longest:,} tokens on {device}: "
                      f"{_names(fastest)}")
    lr = sections.get("long_range")
    if lr and lr.get("rows"):
        learnt = {}
        for k, i in _lr_runs(lr):
            good = [r["distance"] for r in lr["rows"] if r["kind"] == k
                    and run_init(r) == i and r["accuracy"] >= MASTERY]
            learnt[_run_name(k, i)] = f"d = {max(good):,}" if good else "none"
        out.append(f"The longest distance learnt to {MASTERY:.0%} accuracy in {lr['steps']:,} "
                   f"steps: {', '.join(f'{n} {v}' for n, v in learnt.items())} (of d = "
                   f"{', '.join(f'{d:,}' for d in sorted({r['distance'] for r in lr['rows']}))}"
                   ").")
        acc = long_range_accuracy(lr)
        far = long_distances(lr)
        best = winner(acc, True, lr["margin"])
        if acc[best[0]] <= lr["chance"] + lr["margin"]:
            choose.append(f"dependencies {far[0]:,}+ tokens back: none of the three learnt "
                          "them in this budget")
        else:
            default = long_range_accuracy(lr, "default")
            chrono = [NAMES[k] for k in best if k in default
                      and acc[k] > default[k] + lr["margin"]]
            how = f" ({' and '.join(chrono)} with `init=chrono`)" if chrono else ""
            choose.append(f"dependencies {far[0]:,}+ tokens back: {_names(best)}{how}")
    q = sections.get("quality")
    for d in (q or {}).get("datasets", []):
        if "skipped" in d or not d.get("rows") or any(r.get("value") is None for r in d["rows"]):
            continue
        values = {r["kind"]: r["value"] for r in d["rows"]}
        best = winner(values, d["higher_is_better"], d["margin"])
        shown = _kinds({k: f"{v:.4f}" for k, v in values.items()})
        out.append(f"With {duration(d['budget_s'])} of training each on {device}, "
                   f"{d['name']} {d['metric']}: {shown}; the best: {_names(best)}.")
        choose.append(f"{d['name']} in a fixed training time: {_names(best)}")
    g = sections.get("generation")
    if g and g.get("rows"):
        ms: dict[str, dict[int, float]] = {}
        for r in g["rows"]:
            ms.setdefault(r["kind"], {})[r["context"]] = r["ms_per_token"]
        lo, hi = min(ms["lstm"]), max(ms["lstm"])
        growth = {k: f"{v[hi] / v[lo]:.2f}x" for k, v in ms.items()}
        at_hi = {k: v[hi] for k, v in ms.items()}
        cheapest = winner({k: -v for k, v in at_hi.items()}, True,
                          TIME_TOLERANCE * min(at_hi.values()))
        out.append(f"A generated token at context {hi:,} costs, relative to context {lo:,}: "
                   f"{_kinds(growth)}; at {hi:,} the Transformer's token costs "
                   f"{at_hi['transformer'] / at_hi['lstm']:.2f}x the LSTM's.")
        choose.append(f"generating with {hi:,} tokens of context: {_names(cheapest)}")
    return out, choose


# --------------------------------------------------------------------------------- render
def render(results: dict[str, Any], plots: dict[str, str]) -> str:
    meta = results["meta"]
    s = results["sections"]
    device = meta["device_label"]
    title = "LSTM vs GRU vs Transformer: measured (issue 13)"
    lines = [f"# {title}" + (" (--quick: tiny sizes, checks the machinery only)"
                             if meta["quick"] else ""), "",
             f"Command: `{meta['command']}`  ", f"Date: {meta['date']}  ",
             f"Machine: {meta['cpu']}, {meta['cores']} cores; device {device}; torch "
             f"{meta['torch']}, {meta['threads']} threads (OMP_NUM_THREADS="
             f"{meta['omp_num_threads']}); load average at the start {meta['load']}.  ",
             "Section times: " + ", ".join(f"{k} {v:,.0f} s" for k, v in
                                           results["times"].items()) + "."]
    for update in meta.get("updates", []):
        lines[-1] += "  "
        lines.append(f"Updated {update['date']}: section(s) {', '.join(update['sections'])} "
                     f"rerun by `{update['command']}` (torch {update['torch']}, "
                     f"{update['threads']} threads, load average at the start "
                     f"{update['load']}); the rest is from the run above.")
    lines.append("")

    def section(number: int, name: str, key: str, body: Any, intro: str = "") -> None:
        lines.extend([f"## {number}. {name}", ""])
        if intro:
            lines.extend([intro, ""])
        if s.get(key) is None:
            lines.extend(["Not run.", ""])
        else:
            lines.extend([*body(s[key]), ""])
        if key in plots:
            lines.extend([f"![{name}]({plots[key]})", ""])

    section(1, "Parameters per layer", "params", _params_md,
            "Counted from our modules: `LSTMEncoder(d, d, 1)` (cell lstm or gru) and one layer "
            "of `TransformerEncoder(d, d, 1)` (4 heads, feed-forward 4d, pre-norm; the "
            "encoder's final layer norm left out).")
    section(2, "Cost against sequence length (training, one layer)", "cost", _cost_md,
            "Forward + backward (gradients of the input and every parameter) of one layer at "
            "equal parameters, at a constant number of tokens per batch (B = tokens / T). Peak "
            "memory: the most bytes held during one step above those held before it (CUDA: "
            "`max_memory_allocated`; CPU: the profiler's trace of PyTorch's allocator, which "
            "does not see oneDNN's own scratch memory). The Transformer is not causal (full "
            "attention, as in classification). On CPU, PyTorch runs the fused LSTM as oneDNN's "
            "`mkldnn_rnn_layer` but the GRU as `aten::gru`, a step-by-step composition of "
            "ordinary ops (profiler op names, torch 2.13): there, GRU against LSTM compares "
            "those kernels as much as the cells. `nn.MultiheadAttention` calls "
            "`scaled_dot_product_attention`, which on CPU and CUDA runs a flash-attention "
            "kernel that never holds the T x T weights: the Transformer's memory stays linear "
            "in T, and only its time shows the T^2 of attention.")
    section(3, "Long-range dependency (delayed recall)", "long_range", _long_range_md,
            "Random noise tokens with one signal token d positions before the last; the label "
            f"is that signal, read at the end (T = d + {PREFIX + 1}). One-layer unidirectional "
            "LSTM / GRU or one Transformer layer at equal encoder parameters, equal steps, "
            "fresh batches every step.")
    section(4, "Quality at equal wall time", "quality", _quality_md,
            "`train.py` with `encoder=lstm|gru|transformer` and the same `trainer.max_time`; "
            "equal parameters without the token embedding (the LSTM keeps the experiment's "
            "size). The schedule is the experiment's; a run the budget cuts ends before it. "
            "As the project configures them, the LSTM and GRU language models carry their "
            "state across contiguous batches, while the Transformer reads each batch on its "
            "own (its context is `data.seq_len`), in training and in validation.")
    section(5, "Generation cost per token against context", "generation", _generation_md,
            "`LanguageModelNet.prompt` reads the context, then `step` generates greedily: the "
            "LSTM carries (h, c), the Transformer its key/value cache (`LMState.cache`), so its "
            "step attends to every earlier token.")

    lines += ["## 6. The seed's table, measured", "",
              "The seed article's comparison (section 5, translated):", "",
              "| trait | LSTM | GRU | Transformer |", "|---|---|---|---|"]
    lines += [f"| {t} | {a} | {b} | {c} |" for t, a, b, c in SEED_TABLE]
    lines += ["", "Each testable statement against this run's numbers:", "",
              "| trait | statement | measured | verdict |", "|---|---|---|---|"]
    for claim in all_claims(s, device):
        lines.append(f"| {claim.trait} | {claim.statement} | {claim.measured} | "
                     f"**{claim.verdict}** |")
    lines += ["", "### When to choose which", ""]
    sentences, choose = advice(s, device)
    lines += [" ".join(sentences) if sentences else "Nothing measured, nothing to conclude.", ""]
    if choose:
        lines += ["From these numbers, choose for", ""]
        lines += [f"- {c}" for c in choose]
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- plots
def plot(results: dict[str, Any], out_dir: Path, suffix: str) -> dict[str, str]:
    """PNG plots of the sections that ran; returns section -> file name (relative to out_dir)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = results["sections"]
    device = results["meta"]["device_label"]
    made: dict[str, str] = {}
    styles = {"lstm": "o-", "gru": "s--", "transformer": "^-"}

    def save(fig: Any, key: str) -> None:
        name = f"compare_{key}{suffix}.png"
        fig.tight_layout()
        fig.savefig(out_dir / name, dpi=120)
        plt.close(fig)
        made[key] = name

    cost = s.get("cost")
    if cost and cost.get("rows"):
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for k in NAMES:
            rows = sorted((r for r in cost["rows"] if r["kind"] == k), key=lambda r: r["T"])
            T = [r["T"] for r in rows]
            a = cost["fits"][k]["time_per_batch"]
            axes[0].plot(T, [1e3 * r["seconds"] for r in rows], styles[k],
                         label=f"{NAMES[k]} (~T^{a:.2f})")
            axes[1].plot(T, [r["memory_bytes"] / 2**20 for r in rows], styles[k],
                         label=NAMES[k])
        for ax, label in zip(axes, ("fwd+bwd ms per batch", "peak MB per batch"), strict=True):
            ax.set(xscale="log", yscale="log", xlabel="sequence length T", ylabel=label)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend()
        fig.suptitle(f"One layer, equal parameters, {cost['tokens']:,} tokens per batch "
                     f"({device})")
        save(fig, "cost")
    lr = s.get("long_range")
    if lr and lr.get("rows"):
        fig, ax = plt.subplots(figsize=(6, 4))
        for k, i in _lr_runs(lr):
            rows = sorted((r for r in lr["rows"] if r["kind"] == k
                           and run_init(r) == i), key=lambda r: r["distance"])
            style = styles[k] if i == "default" else styles[k][0] + ":"
            ax.plot([r["distance"] for r in rows], [r["accuracy"] for r in rows], style,
                    label=_run_name(k, i), alpha=1.0 if i == "default" else 0.7)
        ax.axhline(lr["chance"], color="grey", linestyle=":", label="chance")
        ax.set(xscale="log", xlabel="distance d", ylabel="held-out accuracy", ylim=(0, 1.05),
               title=f"Delayed recall, equal parameters, {lr['steps']:,} steps")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        save(fig, "long_range")
    g = s.get("generation")
    if g and g.get("rows"):
        fig, ax = plt.subplots(figsize=(6, 4))
        for k in NAMES:
            rows = sorted((r for r in g["rows"] if r["kind"] == k), key=lambda r: r["context"])
            fit = g["fits"][k]
            label = NAMES[k] + ("" if fit is None else f" (~c^{fit:.2f})")
            ax.plot([r["context"] for r in rows], [r["ms_per_token"] for r in rows], styles[k],
                    label=label)
        ax.set(xscale="log", yscale="log", xlabel="context length c (tokens)",
               ylabel="ms per generated token",
               title=f"Generation cost per token, batch {g['batch']} ({device})")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        save(fig, "generation")
    return made
