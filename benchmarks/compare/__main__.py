"""LSTM vs GRU vs Transformer, measured on our encoders (issue 13).

    python -m benchmarks.compare [--device cuda] [--quick] [--out DIR] [--sections a,b,...]
    python -m benchmarks.compare --render RESULTS.json [--out DIR]
    python -m benchmarks.compare --update RESULTS.json --sections a,b,... [--out DIR]

Sections: params (parameters per layer, equal-parameter widths), cost (training time and peak
memory against the sequence length), long_range (accuracy against the distance of a
dependency), quality (SST-2 and Tiny Shakespeare at equal wall time, through ``train.py``; needs
``$NLP_LSTM_DATA``), generation (cost per generated token against the context); then the
seed's table with each claim marked, and advice derived from the numbers.

Writes ``COMPARE.md``, ``compare.json`` (the measurements; ``--render`` re-renders them) and
``compare_*.png`` into ``--out`` (default ``benchmarks/results/``; with ``--render`` or
``--update``, the folder of the saved measurements). ``--quick`` (tiny sizes, minutes on 2 cores,
the embedded corpora in place of the real data) writes ``COMPARE_quick.md`` etc. into
``outputs/compare_quick/`` by default, never over the full report. ``--update`` reruns the
named sections into saved measurements (after a fix that concerns only them) and re-renders;
the report's header lists each update with its command, date and load. Training runs of the quality
section go to ``--runs-dir`` (default ``outputs/compare/runs``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import sys
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch

from benchmarks.compare import cost, generation, long_range, params, quality
from benchmarks.compare.report import plot, render

SECTIONS = ("params", "cost", "long_range", "quality", "generation")


@dataclass(frozen=True)
class Settings:
    widths: tuple[int, ...]  # params
    cost_width: int  # the Transformer's d; LSTM/GRU at equal parameters
    cost_lengths: tuple[int, ...]
    cost_tokens: int
    cost_runs: int
    lr_width: int  # the Transformer's d
    lr_embedding: int
    lr_distances: tuple[int, ...]
    lr_steps: int
    lr_batch: int
    lr_eval: int
    quality_budget_s: dict[str, int]  # per task
    gen_width: int  # the LSTM's; GRU/Transformer at equal parameters
    gen_layers: int
    gen_embedding: int
    gen_contexts: tuple[int, ...]
    gen_tokens: int
    gen_rounds: int


# Budgets on a quiet 2-core CPU (estimated from 1-thread timings on a busy one): params ~10 s,
# cost ~3 min, long_range ~20 min (d = 1,000 three quarters of it: ~0.6 / 1.0 / 1.3 s a step
# for LSTM / GRU / Transformer at 1 thread), quality 6 runs of 5 or 7 min plus start-up and
# final validation (~40 min), generation ~2 min: ~65-75 min in all.
FULL = Settings(widths=(256, 512), cost_width=256, cost_lengths=(64, 256, 1024, 4096),
                cost_tokens=8192, cost_runs=5, lr_width=64, lr_embedding=32,
                lr_distances=(10, 50, 200, 1000), lr_steps=500, lr_batch=32, lr_eval=1024,
                quality_budget_s={"sentiment": 300, "generation": 420}, gen_width=512,
                gen_layers=2, gen_embedding=128, gen_contexts=(100, 1000, 4000), gen_tokens=64,
                gen_rounds=3)
QUICK = Settings(widths=(256, 512), cost_width=32, cost_lengths=(64, 256, 1024),
                 cost_tokens=2048, cost_runs=3, lr_width=16, lr_embedding=16,
                 lr_distances=(10, 50, 200), lr_steps=100, lr_batch=32, lr_eval=256,
                 quality_budget_s={"sentiment": 20, "generation": 20}, gen_width=32,
                 gen_layers=1, gen_embedding=16, gen_contexts=(100, 1000, 4000), gen_tokens=16,
                 gen_rounds=2)


def override(settings: Settings, assignments: list[str]) -> Settings:
    """Settings with ``name=value`` assignments applied: an int, comma-separated ints for a
    tuple, ``key:int,...`` for a mapping (``quality_budget_s=sentiment:600,generation:600``)."""
    changes: dict[str, Any] = {}
    for assignment in assignments:
        name, sep, value = assignment.partition("=")
        if not sep or not hasattr(settings, name):
            raise ValueError(f"--set {assignment!r}: expected NAME=VALUE with NAME one of "
                             f"{[f.name for f in fields(settings)]}")
        current = getattr(settings, name)
        try:
            if isinstance(current, tuple):
                changes[name] = tuple(int(v) for v in value.split(","))
            elif isinstance(current, dict):
                pairs = (item.split(":") for item in value.split(","))
                changes[name] = {**current, **{k: int(v) for k, v in pairs}}
            else:
                changes[name] = int(value)
        except ValueError as e:
            raise ValueError(f"--set {assignment!r}: {e}") from None
    return replace(settings, **changes)


def machine(device: torch.device, quick: bool, argv: list[str], settings: Settings
            ) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    label = str(device)
    if device.type == "cuda":
        label = f"cuda ({torch.cuda.get_device_name(device)})"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "-"
    return {"command": shlex.join(["python", "-m", "benchmarks.compare", *argv]),
            "settings": asdict(settings),
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset"),
            "load": load, "device": device.type, "device_label": label, "quick": quick}


def run_sections(names: list[str], settings: Settings, args: argparse.Namespace,
                 device: torch.device, meta: dict[str, Any] | None = None,
                 partial: Path | None = None) -> tuple[dict[str, Any], dict[str, float]]:
    """The measurements of the named sections, and their seconds. After each section the
    measurements so far go to ``partial`` (a ``--render``-able JSON), so that an hour of
    measuring survives a failure in a later section."""
    sections: dict[str, Any] = dict.fromkeys(SECTIONS)
    times: dict[str, float] = {}
    s = settings
    for name in names:
        print(f"[{name}] ...", flush=True)
        start = time.perf_counter()
        if name == "params":
            sections[name] = params.table(s.widths)
        elif name == "cost":
            sections[name] = cost.measure(s.cost_width, s.cost_lengths, s.cost_tokens,
                                          s.cost_runs, 1, device)
        elif name == "long_range":
            sections[name] = long_range.measure(
                s.lr_width, s.lr_distances, embedding=s.lr_embedding, signals=8, noise=16,
                steps=s.lr_steps, batch=s.lr_batch, lr=3e-3, eval_size=s.lr_eval, device=device)
        elif name == "quality":
            datasets = (quality.embedded_datasets() if args.quick
                        else quality.real_datasets())
            root = None if args.quick else os.environ.get("NLP_LSTM_DATA")
            sections[name] = quality.measure(datasets, s.quality_budget_s,
                                             args.transformer_layers, Path(args.runs_dir),
                                             device.type, root)
        elif name == "generation":
            sections[name] = generation.measure(
                s.gen_contexts, lstm_width=s.gen_width, layers=s.gen_layers,
                embedding=s.gen_embedding, tokens=s.gen_tokens, rounds=s.gen_rounds, batch=1,
                device=device)
        times[name] = time.perf_counter() - start
        print(f"[{name}] {times[name]:.0f} s", flush=True)
        if partial is not None:
            partial.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(json.dumps({"meta": meta, "sections": sections,
                                           "times": times}, indent=1) + "\n")
    return sections, times


def write(results: dict[str, Any], out: Path, quick: bool) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    suffix = "_quick" if quick else ""
    (out / f"compare{suffix}.json").write_text(json.dumps(results, indent=1) + "\n")
    plots = plot(results, out, suffix)
    report = out / f"COMPARE{suffix}.md"
    report.write_text(render(results, plots))
    return report


def updated(saved: dict[str, Any], new: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """``saved`` with the sections ``names`` (and their times) taken from ``new``, and the
    update recorded in ``meta["updates"]`` for the report's header."""
    meta = dict(saved["meta"])
    update = {key: new["meta"][key] for key in ("command", "date", "load", "torch", "threads")}
    meta["updates"] = [*meta.get("updates", []), {**update, "sections": names}]
    sections = {**saved["sections"], **{name: new["sections"][name] for name in names}}
    times = {**saved["times"], **{name: new["times"][name] for name in names}}
    times.pop("total", None)  # the sum of times from different runs is no run's total
    return {"meta": meta, "sections": sections, "times": times}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the machinery")
    parser.add_argument("--out", default=None,
                        help="default: benchmarks/results/ (outputs/compare_quick/ with --quick)")
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--runs-dir", default="outputs/compare/runs")
    parser.add_argument("--transformer-layers", type=int, default=2,
                        help="quality section: layers of the Transformer (the configs' 2)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="change one size or budget of Settings, e.g. lr_steps=1500 or "
                        "lr_distances=10,20,50 (repeatable)")
    parser.add_argument("--render", default=None, metavar="RESULTS.json",
                        help="re-render a report from saved measurements; runs nothing")
    parser.add_argument("--update", default=None, metavar="RESULTS.json",
                        help="rerun --sections into these saved measurements and re-render")
    args = parser.parse_args(argv)
    if args.render and args.update:
        parser.error("--render and --update exclude each other")
    if args.render:
        results = json.loads(Path(args.render).read_text())
        quick = results["meta"]["quick"]
        out = Path(args.out or Path(args.render).parent)
        print(f"wrote {write(results, out, quick)}")
        return
    names = [n.strip() for n in args.sections.split(",") if n.strip()]
    unknown = sorted(set(names) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {unknown}; expected some of {list(SECTIONS)}")
    try:
        settings = override(QUICK if args.quick else FULL, args.set)
    except ValueError as e:
        parser.error(str(e))
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    saved = None
    if args.update:
        saved = json.loads(Path(args.update).read_text())
        if saved["meta"]["quick"] != args.quick:
            parser.error(f"--update {args.update}: its measurements have quick="
                         f"{saved['meta']['quick']}, this run quick={args.quick}")
        if set(names) == set(SECTIONS):
            parser.error("--update needs --sections: the sections to rerun")
    out = Path(args.out or (Path(args.update).parent if args.update else
                            "outputs/compare_quick" if args.quick else "benchmarks/results"))
    meta = machine(device, args.quick, argv, settings)
    print(f"{meta['command']}\n{meta['cpu']}, {meta['cores']} cores, torch {meta['torch']}, "
          f"{meta['threads']} threads, device {meta['device_label']}", flush=True)
    start = time.perf_counter()
    partial = out / f"compare{'_quick' if args.quick else ''}.partial.json"
    sections, times = run_sections(names, settings, args, device, meta, partial)
    times["total"] = time.perf_counter() - start
    results = {"meta": meta, "sections": sections, "times": times}
    if saved is not None:
        results = updated(saved, results, names)
    report = write(results, out, args.quick)
    partial.unlink(missing_ok=True)
    print(f"total {times['total']:.0f} s; wrote {report}")


if __name__ == "__main__":
    main()
