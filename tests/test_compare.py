"""benchmarks.compare (issue 13): the pieces that decide what the report says, on fake
measurements; nothing here times anything."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from benchmarks.compare import claims, long_range, params, report
from benchmarks.compare.cost import fit_exponent


# ----------------------------------------------------------------------- width solver
def test_solve_width_finds_the_nearest_count() -> None:
    def lstm(w: int) -> int:
        return 8 * w * w + 8 * w

    assert params.solve_width(lstm, lstm(300)) == 300
    # Between two widths: the nearer one, whichever side it is on.
    assert params.solve_width(lstm, lstm(300) + 10) == 300
    assert params.solve_width(lstm, lstm(301) - 10) == 301
    # Multiples of a step only, still the nearest among them.
    w = params.solve_width(lstm, lstm(301), step=4)
    assert w % 4 == 0
    assert all(abs(lstm(w) - lstm(301)) <= abs(lstm(v) - lstm(301)) for v in range(4, 700, 4))
    assert params.solve_width(lstm, 1) == 1
    with pytest.raises(ValueError, match="positive"):
        params.solve_width(lstm, 0)


def test_equal_param_widths_from_the_modules() -> None:
    d = 24
    target = params.layer_params("transformer", d)
    widths = params.equal_param_widths("transformer", d)
    assert widths["transformer"] == d
    for kind in ("lstm", "gru"):
        w = widths[kind]
        gap = abs(params.layer_params(kind, w) - target)
        assert gap <= abs(params.layer_params(kind, w - 1) - target)
        assert gap <= abs(params.layer_params(kind, w + 1) - target)
    # The counts come from the modules: the known closed forms of these layers.
    assert params.layer_params("lstm", d) == 8 * d * d + 8 * d
    assert params.layer_params("gru", d) == 6 * d * d + 6 * d
    assert target == 12 * d * d + 13 * d  # attention 4d^2+4d, FF 8d^2+5d, two norms 4d
    assert widths["transformer"] < widths["lstm"] < widths["gru"]


# ----------------------------------------------------------------------- exponent fit
def test_fit_exponent_recovers_a_power_law() -> None:
    xs = [64, 256, 1024, 4096]
    a, b = fit_exponent(xs, [3.0 * x**1.5 for x in xs])
    assert a == pytest.approx(1.5)
    assert b == pytest.approx(math.log(3.0))
    flat, _ = fit_exponent(xs, [0.2, 0.2, 0.2, 0.2])
    assert flat == pytest.approx(0.0, abs=1e-12)
    noisy = [x * (1.05 if i % 2 else 0.95) for i, x in enumerate(xs)]
    assert fit_exponent(xs, noisy)[0] == pytest.approx(1.0, abs=0.05)
    with pytest.raises(ValueError, match="positive"):
        fit_exponent([1, 2], [0.0, 1.0])
    with pytest.raises(ValueError, match="distinct"):
        fit_exponent([2, 2], [1.0, 2.0])


# ----------------------------------------------------------------------- long-range data
@pytest.mark.parametrize("distance", [1, 10, 200])
def test_long_range_label_is_the_token_d_back(distance: int) -> None:
    signals, noise = 8, 16
    tokens, labels = long_range.make_batch(64, distance, signals, noise,
                                           torch.Generator().manual_seed(distance))
    sig, noi = long_range.vocabulary(signals, noise)
    T = distance + long_range.PREFIX + 1
    assert tokens.shape == (64, T)
    position = T - 1 - distance  # d steps before the last token
    assert torch.equal(tokens[:, position], labels + sig.start)
    is_signal = (tokens >= sig.start) & (tokens < sig.stop)
    assert torch.equal(is_signal.sum(1), torch.ones(64, dtype=torch.long))  # one signal only
    assert bool(is_signal[:, position].all())
    others = torch.cat([tokens[:, :position], tokens[:, position + 1:]], dim=1)
    assert bool(((others >= noi.start) & (others < noi.stop)).all())
    assert position >= long_range.PREFIX  # never the first token
    assert len(set(labels.tolist())) > 1


def test_long_range_models_have_equal_encoder_parameters() -> None:
    widths = long_range.widths_at_equal_params(16, embedding=8)
    counts = {k: long_range.encoder_params(k, w, 8) for k, w in widths.items()}
    target = counts["transformer"]
    for kind in ("lstm", "gru"):
        assert abs(counts[kind] - target) / target < 0.05
    net = long_range.build("lstm", widths["lstm"], 8, 4, 8, 20)
    tokens, _ = long_range.make_batch(3, 5, 4, 8, torch.Generator().manual_seed(0))
    assert net(tokens, torch.full((3,), tokens.size(1))).shape == (3, 4)


# ----------------------------------------------------------------------- fake measurements
def fake_results() -> dict:
    """Measurements in the shape the sections produce, with chosen numbers."""
    kinds = ("lstm", "gru", "transformer")
    equal = {"256": {"lstm": 526336, "gru": 394752, "transformer": 789760}}
    match = {"256": {"lstm": {"width": 314, "params": 791280},
                     "gru": {"width": 362, "params": 788436},
                     "transformer": {"width": 256, "params": 789760}}}
    match_lstm = {"256": {"lstm": {"width": 256, "params": 526336},
                          "gru": {"width": 296, "params": 527472},
                          "transformer": {"width": 208, "params": 521872}}}
    seconds = {64: {"lstm": 0.10, "gru": 0.30, "transformer": 0.05},
               1024: {"lstm": 0.12, "gru": 0.33, "transformer": 0.40}}
    memory = {64: {"lstm": 50e6, "gru": 40e6, "transformer": 30e6},
              1024: {"lstm": 50e6, "gru": 40e6, "transformer": 90e6}}
    cost_rows = [{"kind": k, "T": T, "B": 8192 // T, "seconds": seconds[T][k],
                  "memory_bytes": memory[T][k]} for T in seconds for k in kinds]
    fits = {k: {"time_per_batch": fit_exponent([64, 1024], [seconds[64][k], seconds[1024][k]])[0],
                "time_per_sequence": 0.0, "memory_per_batch": 0.0} for k in kinds}
    accuracy = {10: {"lstm": 1.0, "gru": 1.0, "transformer": 1.0},
                200: {"lstm": 0.60, "gru": 0.30, "transformer": 1.0},
                1000: {"lstm": 0.20, "gru": 0.125, "transformer": 0.98}}
    lr_rows = [{"kind": k, "distance": d, "T": d + 8, "width": 8, "accuracy": accuracy[d][k],
                "final_loss": 1.0, "seconds": 10.0} for d in accuracy for k in kinds]
    quality_rows = {"SST-2": {"lstm": 0.85, "gru": 0.80, "transformer": 0.75},
                    "Tiny Shakespeare": {"lstm": 2.10, "gru": 2.15, "transformer": 2.30}}
    datasets = [{"name": name, "metric": metric, "higher_is_better": higher, "margin": margin,
                 "budget_s": 300,
                 "rows": [{"kind": k, "width": 100, "params": 1000, "layers": 1, "wall_s": 320.0,
                           "command": f"train.py encoder={k}", "value": quality_rows[name][k],
                           "steps": 900, "epochs": 2, "tokens_per_s": 5000.0} for k in kinds]}
                for name, metric, higher, margin in (("SST-2", "val/acc", True, 0.034),
                                                     ("Tiny Shakespeare", "val/bpc", False,
                                                      0.02))]
    ms = {100: {"lstm": 1.0, "gru": 0.9, "transformer": 0.8},
          4000: {"lstm": 1.0, "gru": 0.9, "transformer": 6.0}}
    gen_rows = [{"kind": k, "context": c, "ms_per_token": ms[c][k]} for c in ms for k in kinds]
    return {
        "meta": {"command": "python -m benchmarks.compare", "date": "2026-12-01T00:00:00+00:00",
                 "cpu": "Test CPU", "cores": 2, "torch": "2.13.0", "threads": 2,
                 "omp_num_threads": "unset", "load": "0.00", "device": "cpu",
                 "device_label": "cpu", "quick": False},
        "times": {"params": 1.0, "total": 2.0},
        "sections": {
            "params": {"equal_width": equal, "match_transformer": match,
                       "match_lstm": match_lstm},
            "cost": {"width": 256, "widths": {"lstm": 314, "gru": 362, "transformer": 256},
                     "params": {"lstm": 791280, "gru": 788436, "transformer": 790272},
                     "tokens": 8192, "runs": 5, "warmup": 1, "rows": cost_rows, "fits": fits},
            "long_range": {"widths": {"lstm": 96, "gru": 112, "transformer": 64},
                           "encoder_params": {"lstm": 50000, "gru": 50100, "transformer": 50200},
                           "embedding": 32, "signals": 8, "noise": 16, "chance": 0.125,
                           "steps": 500, "batch": 32, "lr": 0.003, "eval_size": 1024,
                           "margin": 0.031, "rows": lr_rows},
            "quality": {"datasets": datasets, "transformer_layers": 2},
            "generation": {"widths": {"lstm": 512, "gru": 590, "transformer": 376},
                           "layers": 2, "embedding": 128, "batch": 1, "tokens": 64,
                           "rounds": 3, "params": {"lstm": 1, "gru": 1, "transformer": 1},
                           "rows": gen_rows,
                           "fits": {"lstm": 0.0, "gru": 0.0, "transformer": 0.6}},
        },
    }


def test_report_has_the_rows_of_the_measurements() -> None:
    text = report.render(fake_results(), {"cost": "compare_cost.png"})
    assert "| 256 | 526,336 | 394,752 | 789,760 | 0.75 | 1.50 |" in text
    assert "| Transformer, d = 256 | 789,760 | 314 (791,280) | 362 (788,436) | 256 (789,760) |" \
        in text
    # cost: T, B, ms, ratio, MB
    assert "| 64 | 128 | 100.0 | 300.0 | 50.0 | 0.50 | 47.7 | 38.1 | 28.6 |" in text
    # fitted exponents, then the one between the two longest lengths (here the only two)
    assert "| Transformer | 0.75 | 0.00 | 0.00 | 0.75 |" in text
    assert "| 1,000 | 1,008 | 0.200 | 0.125 | 0.980 | 10 / 10 / 10 |" in text
    assert "| LSTM | 100 | 1 | 1,000 | 0.8500 | 900 | 2 | 5,000 | 320 |" in text
    assert "| 4,000 | 1.000 | 0.900 | 6.000 | 6.00 |" in text
    assert "![Cost against sequence length (training, one layer)](compare_cost.png)" in text
    assert "Command: `python -m benchmarks.compare`" in text and "Test CPU, 2 cores" in text


def test_report_with_sections_missing_or_skipped() -> None:
    results = fake_results()
    results["sections"]["cost"] = None
    results["sections"]["quality"]["datasets"][1] = {
        "name": "Tiny Shakespeare", "metric": "val/bpc", "higher_is_better": False,
        "margin": 0.02, "budget_s": 420, "skipped": "NLP_LSTM_DATA is not set"}
    text = report.render(results, {})
    assert "## 2. Cost against sequence length (training, one layer)\n\nForward" in text
    assert "Not run." in text
    assert "Skipped: NLP_LSTM_DATA is not set." in text
    assert "| training efficiency | GRU trains faster than LSTM (time per token) | - | " \
           "**not measured** |" in text


# ----------------------------------------------------------------------- claims
def by_statement(results: dict) -> dict[str, str]:
    return {c.statement: c.verdict
            for c in claims.all_claims(results["sections"], "cpu")}


def test_claims_confirmed_and_contradicted_follow_the_numbers() -> None:
    results = fake_results()
    v = by_statement(results)
    assert v["LSTM layer > GRU layer at equal width"] == "confirmed"
    assert v["Transformer layer the largest at equal width (feed-forward 4d)"] == "confirmed"
    assert v["Transformer the best at long distances"] == "confirmed"
    assert v["LSTM better than GRU"] == "confirmed"
    assert v["GRU trains faster than LSTM (time per token, equal parameters)"] == "contradicted"
    assert v["LSTM trains faster than Transformer (time per token, equal parameters)"] == \
        "partly (holds at T=1,024)"
    assert v["GRU trains faster than Transformer (time per token, equal parameters)"] == \
        "partly (holds at T=1,024)"
    assert v["Transformer the worst at equal wall time (quality)"] == "confirmed"
    assert v["Transformer needs the most memory (peak, training, equal parameters)"] == \
        "partly (holds at T=1,024)"

    flipped = copy.deepcopy(results)
    s = flipped["sections"]
    s["params"]["equal_width"]["256"] = {"lstm": 10, "gru": 20, "transformer": 5}
    for r in s["long_range"]["rows"]:
        r["accuracy"] = {"lstm": 0.3, "gru": 0.9, "transformer": 0.125}[r["kind"]]
    for r in s["cost"]["rows"]:
        r["seconds"] = {"lstm": 0.3, "gru": 0.2, "transformer": 0.1}[r["kind"]]
        r["memory_bytes"] = {"lstm": 3e6, "gru": 2e6, "transformer": 1e6}[r["kind"]]
    for d in s["quality"]["datasets"]:
        for r in d["rows"]:
            r["value"] = {"lstm": 0.5, "gru": 0.5, "transformer": 0.9}[r["kind"]] \
                if d["higher_is_better"] else {"lstm": 3, "gru": 3, "transformer": 1}[r["kind"]]
    v = by_statement(flipped)
    assert v["LSTM layer > GRU layer at equal width"] == "contradicted"
    assert v["Transformer layer the largest at equal width (feed-forward 4d)"] == "contradicted"
    assert v["Transformer the best at long distances"] == "contradicted"
    assert v["LSTM better than GRU"] == "contradicted"
    assert v["GRU trains faster than LSTM (time per token, equal parameters)"] == "confirmed"
    assert v["LSTM trains faster than Transformer (time per token, equal parameters)"] == \
        "contradicted"
    assert v["GRU trains faster than Transformer (time per token, equal parameters)"] == \
        "contradicted"
    assert v["Transformer the worst at equal wall time (quality)"] == "contradicted"
    assert v["Transformer needs the most memory (peak, training, equal parameters)"] == \
        "contradicted"


def test_verdict_margins_and_ties() -> None:
    assert claims.outcome(0.50, [0.49], margin=0.03) == 0
    assert claims.outcome(0.60, [0.49], margin=0.03) == 1
    assert claims.outcome(0.40, [0.49, 0.1], margin=0.03) == -1
    assert claims.relative_outcome(1.04, [1.0], 0.05) == 0
    assert claims.verdict([0, 0]) == "inconclusive"
    assert claims.verdict([0, -1], ["a", "b"]) == "contradicted (a tie at a)"
    assert claims.verdict([1, -1], ["a", "b"]) == "partly (holds at a)"
    assert claims.verdict([]) == "not measured"
    # Accuracies all at chance at the long distances: no model is "the best".
    results = fake_results()
    for r in results["sections"]["long_range"]["rows"]:
        if r["distance"] >= 200:
            r["accuracy"] = 0.125
    v = by_statement(results)
    assert v["Transformer the best at long distances"] == "inconclusive"
    assert v["LSTM better than GRU"] == "inconclusive"


def test_advice_is_derived_from_the_numbers() -> None:
    results = fake_results()
    sentences, choose = report.advice(results["sections"], "cpu")
    assert choose == ["the fewest parameters at a given width: GRU",
                      "training on sequences of 1,024 tokens on cpu: LSTM",
                      "dependencies 200+ tokens back: Transformer",
                      "SST-2 in a fixed training time: LSTM",
                      "Tiny Shakespeare in a fixed training time: LSTM",
                      "generating with 4,000 tokens of context: GRU"]
    assert "LSTM d = 10, GRU d = 10, Transformer d = 1,000" in " ".join(sentences)
    assert "- SST-2 in a fixed training time: LSTM\n" in report.render(results, {})

    s = results["sections"]
    for r in s["quality"]["datasets"][0]["rows"]:
        r["value"] = {"lstm": 0.80, "gru": 0.81, "transformer": 0.90}[r["kind"]]
    for r in s["long_range"]["rows"]:
        r["accuracy"] = 0.125
    choose = report.advice(s, "cpu")[1]
    assert "SST-2 in a fixed training time: Transformer" in choose
    assert "dependencies 200+ tokens back: none of the three learnt them in this budget" \
        in choose
    for r in s["quality"]["datasets"][0]["rows"]:
        r["value"] = {"lstm": 0.80, "gru": 0.81, "transformer": 0.70}[r["kind"]]
    choose = report.advice(s, "cpu")[1]
    assert "SST-2 in a fixed training time: GRU or LSTM (a tie within the margin)" in choose


def test_chrono_runs_in_the_table_the_claims_and_the_advice() -> None:
    """Chrono-init rows get their own columns; a kind is judged at its better init, and advice
    that rests on a chrono run says so."""
    results = fake_results()
    lr = results["sections"]["long_range"]
    chrono = {10: {"lstm": 1.0, "gru": 1.0}, 200: {"lstm": 1.0, "gru": 0.9},
              1000: {"lstm": 0.99, "gru": 0.5}}
    lr["rows"] += [{"kind": k, "init": "chrono", "distance": d, "T": d + 8, "width": 8,
                    "accuracy": chrono[d][k], "final_loss": 1.0, "seconds": 20.0}
                   for d in chrono for k in ("lstm", "gru")]
    text = report.render(results, {})
    assert ("| d | T | LSTM acc | GRU acc | Transformer acc | LSTM chrono acc | GRU chrono acc "
            "| training s (LSTM / GRU / Transformer / LSTM chrono / GRU chrono) |") in text
    assert "| 1,000 | 1,008 | 0.200 | 0.125 | 0.980 | 0.990 | 0.500 | 10 / 10 / 10 / 20 / 20 |" \
        in text
    assert "LSTM chrono d = 1,000, GRU chrono d = 200" in text
    v = by_statement(results)
    assert v["Transformer the best at long distances"] == "inconclusive"  # 0.99 vs 0.995
    assert v["LSTM better than GRU"] == "confirmed"
    assert "LSTM 0.400 (chrono init 0.995)" in next(
        c.measured for c in claims.all_claims(results["sections"], "cpu")
        if c.statement == "LSTM better than GRU")
    choose = report.advice(results["sections"], "cpu")[1]
    assert ("dependencies 200+ tokens back: LSTM or Transformer (a tie within the margin) "
            "(LSTM with `init=chrono`)") in choose


def test_settings_overrides_and_budget_string() -> None:
    from benchmarks.compare.__main__ import QUICK, override
    from benchmarks.compare.quality import budget_string

    s = override(QUICK, ["lr_steps=7", "lr_distances=5,9", "quality_budget_s=sentiment:30"])
    assert (s.lr_steps, s.lr_distances) == (7, (5, 9))
    assert s.quality_budget_s == {"sentiment": 30,
                                  "generation": QUICK.quality_budget_s["generation"]}
    with pytest.raises(ValueError, match="NAME=VALUE"):
        override(QUICK, ["no_such=1"])
    with pytest.raises(ValueError, match="lr_steps=x"):
        override(QUICK, ["lr_steps=x"])
    assert budget_string(300) == "00:00:05:00"
    assert budget_string(90061) == "01:01:01:01"


def test_update_reruns_only_the_named_sections(tmp_path) -> None:
    import json

    from benchmarks.compare.__main__ import main

    saved = fake_results()
    saved["meta"]["quick"] = True
    path = tmp_path / "compare_quick.json"
    path.write_text(json.dumps(saved))
    main(["--quick", "--update", str(path), "--sections", "params"])
    new = json.loads(path.read_text())
    assert new["sections"]["params"] != saved["sections"]["params"]  # measured, not the fake
    assert new["sections"]["generation"] == saved["sections"]["generation"]  # kept
    assert new["meta"]["date"] == saved["meta"]["date"]
    [update] = new["meta"]["updates"]
    assert update["sections"] == ["params"] and "--update" in update["command"]
    assert "total" not in new["times"] and new["times"]["params"] != saved["times"]["params"]
    text = (tmp_path / "COMPARE_quick.md").read_text()
    assert "section(s) params rerun by `python -m benchmarks.compare --quick --update" in text
    with pytest.raises(SystemExit):  # a full run's measurements are not updated by a quick one
        saved["meta"]["quick"] = False
        path.write_text(json.dumps(saved))
        main(["--quick", "--update", str(path), "--sections", "params"])
    with pytest.raises(SystemExit):  # which sections, said explicitly
        main(["--update", str(path)])
