"""One experiment over several seeds: every seed's metric, and their mean ± std.

    python -m benchmarks.seeds --seeds 1 2 3 [--metric val/bleu] [--out DIR] [--resume] \\
        -- experiment=multi30k_de_en [more overrides]

Each seed is one ``train.py`` run, ``seed=N`` plus the overrides, in its own process and its own
run directory ``DIR/seed_N``, one after the other (a run takes every core; two beside each other
would each measure the other's load). The metric is read from each run's ``metrics.json``: the
final evaluation of the best checkpoint (default: the task's monitored metric, e.g. ``val/bleu``
for translation, beam search included). ``--resume`` keeps seeds whose ``metrics.json`` exists,
so a long series can be finished later. The table goes to stdout and ``DIR/seeds.json``; std is
the sample standard deviation (n - 1). A failed run is reported with its exit code and the
command exits with it, after the other seeds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parent.parent


def summarize(values: Sequence[float]) -> dict[str, float]:
    """mean, sample std (0 for one value), min and max."""
    if not values:
        raise ValueError("no values to summarize")
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"n": len(values), "mean": statistics.fmean(values), "std": std,
            "min": min(values), "max": max(values)}


def monitored_metric(run_dir: Path) -> str:
    """The task's monitored metric (``task.monitor``) of a finished run, from its config."""
    return str(OmegaConf.load(run_dir / "config.yaml").task.monitor)


def run_seed(seed: int, overrides: Sequence[str], run_dir: Path) -> int:
    """``train.py seed=N overrides`` into ``run_dir``; its exit code."""
    command = [sys.executable, str(ROOT / "train.py"), *overrides, f"seed={seed}",
               f"hydra.run.dir={run_dir}"]
    print(f"seed {seed}: train.py {' '.join(command[2:])}", flush=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    with (run_dir / "train.out").open("w") as log:
        return subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT).returncode


def read_result(run_dir: Path, metric: str | None) -> dict[str, Any]:
    """The seed's metric, wall time and step count from its run directory."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    name = metric or monitored_metric(run_dir)
    if name not in metrics:
        raise ValueError(f"{run_dir / 'metrics.json'} has no {name!r}; it has "
                         f"{sorted(k for k, v in metrics.items() if isinstance(v, float))}")
    budget = run_dir / "budget.json"
    steps = json.loads(budget.read_text()).get("steps_run") if budget.is_file() else None
    return {"metric": name, "value": float(metrics[name]),
            "wall_seconds": metrics.get("wall_seconds"), "steps": steps}


def format_table(results: dict[int, dict[str, Any]], summary: dict[str, float],
                 metric: str) -> str:
    lines = [f"{'seed':>6}  {metric:>12}  {'steps':>6}  {'wall':>8}"]
    for seed, r in results.items():
        wall = "" if r.get("wall_seconds") is None else f"{r['wall_seconds']:.0f}s"
        steps = "" if r.get("steps") is None else str(r["steps"])
        lines.append(f"{seed:>6}  {r['value']:>12.4f}  {steps:>6}  {wall:>8}")
    lines.append(f"{metric}: {summary['mean']:.4f} ± {summary['std']:.4f} (mean ± std over "
                 f"{summary['n']} seeds; min {summary['min']:.4f}, max {summary['max']:.4f})")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.seeds", description=__doc__.split("\n\n")[0],
        epilog="Everything after -- goes to train.py, e.g. -- experiment=multi30k_de_en")
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--metric", default=None,
                        help="a key of metrics.json (default: the task's monitored metric)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where the seeds' run directories go (default: outputs/seeds/<time>)")
    parser.add_argument("--resume", action="store_true",
                        help="keep seeds whose run directory already has metrics.json")
    args, overrides = parser.parse_known_args(argv)
    overrides = [o for o in overrides if o != "--"]
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds has repeats: {args.seeds}")
    if any(o.split("=", 1)[0].lstrip("+~") in ("seed", "hydra.run.dir") for o in overrides):
        parser.error("seed= and hydra.run.dir= are set per seed; leave them out")
    out = args.out or ROOT / "outputs" / "seeds" / time.strftime("%Y-%m-%d_%H-%M-%S")
    results: dict[int, dict[str, Any]] = {}
    failed: dict[int, int] = {}
    for seed in args.seeds:
        run_dir = out / f"seed_{seed}"
        if not (args.resume and (run_dir / "metrics.json").is_file()):
            code = run_seed(seed, overrides, run_dir)
            if code:
                failed[seed] = code
                print(f"seed {seed}: train.py exited {code}; see {run_dir / 'train.out'}",
                      file=sys.stderr)
                continue
        results[seed] = read_result(run_dir, args.metric)
        print(f"seed {seed}: {results[seed]['metric']} = {results[seed]['value']:.4f}",
              flush=True)
    if results:
        metric = next(iter(results.values()))["metric"]
        summary = summarize([r["value"] for r in results.values()])
        print(format_table(results, summary, metric))
        out.mkdir(parents=True, exist_ok=True)
        (out / "seeds.json").write_text(json.dumps(
            {"overrides": overrides, "metric": metric, "seeds": results, "summary": summary,
             "failed": failed}, indent=2) + "\n")
    return next(iter(failed.values()), 0) if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
