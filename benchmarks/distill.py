"""Distillation on SST-2, measured: the same student trained on the labels alone and against the
teacher, with the same number of optimizer steps, over several seeds; then the teacher's and the
student's size and CPU latency.

    NLP_LSTM_DATA=../shared/data python -m benchmarks.distill --teacher PATH \\
        [--seeds 1 2 3] [--arms labels distill] [--arm NAME="OVERRIDES"] \\
        [--out outputs/distill_bench] [--threads 1] [--no-latency]

An arm is a name and train.py overrides; ``{teacher}`` in them stands for ``--teacher``. Built
in: ``labels`` (``experiment=sst2_student``), ``distill`` (``experiment=sst2_distill``), and
the ways ``distill`` uses the teacher one at a time: ``kd_only`` (the loss on the labeled
phrases: the issue's plain recipe), ``kd_augmented`` (the loss on the augmented transfer set),
``embedding_only`` (labels only, from the teacher's embedding). ``--arm`` adds recipes, e.g.
``--arm t4="experiment=sst2_distill model.teacher_ckpt={teacher} model.temperature=4"``. Each run
writes ``OUT/<arm>/seed<k>/result.json``; a run whose result exists is not repeated, so two
processes with different ``--arms`` or ``--seeds`` share the machine's cores, and a last call
prints every arm asked for.

Reported per arm: dev accuracy of the best checkpoint (selected on dev at every validation, as
the teacher's was) and at the last step, mean ± sample std over seeds, the difference to the
first arm per seed (paired: same seeds), steps and wall time per run (setup included; the
teacher's pass over the transfer set is made once, before the runs, and timed apart).

Latency: forward passes of the models alone on the dev sentences, tokenized beforehand, in dev
order (unsorted lengths, as a server sees them): batch 1 (the first 200 sentences, one at a
time) and batch 32 (all 872 in 28 batches), teacher and student alternating, median of
``--rounds`` rounds, on ``--threads`` threads.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate

from nlp_lstm.core.cli import bad_input_exits, compose_config
from nlp_lstm.data.base import default_data_root
from nlp_lstm.data.batching import pad_sequences
from nlp_lstm.drivers.registry import load_model
from nlp_lstm.drivers.train import train
from nlp_lstm.sentiment.data import SST2
from nlp_lstm.sentiment.teacher import teacher_logits

ARMS = {
    "labels": "experiment=sst2_student",
    "distill": "experiment=sst2_distill model.teacher_ckpt={teacher}",
    # the three ways sst2_distill uses the teacher, one at a time
    "kd_only": "experiment=sst2_distill model.teacher_ckpt={teacher} data.augment=null "
               "model.init_embedding=random",
    "kd_augmented": "experiment=sst2_distill model.teacher_ckpt={teacher} "
                    "model.init_embedding=random",
    "embedding_only": "experiment=sst2_student model.teacher_ckpt={teacher} "
                      "model.init_embedding=teacher",
}
QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


def _config(overrides: Sequence[str], out: Path) -> Any:
    return compose_config("train", [*overrides, f"paths.output_dir={out}", *QUIET])


def _val_curve(run: Path) -> list[tuple[int, float]]:
    """(step, val/acc) of every validation of the run, from its CSV log."""
    import csv

    with (run / "csv" / "metrics.csv").open() as f:
        return [(int(row["step"]), float(row["val/acc"])) for row in csv.DictReader(f)
                if row.get("val/acc")]


def run_once(arm: str, overrides: Sequence[str], seed: int, out: Path) -> dict[str, Any]:
    run = out / arm / f"seed{seed}"
    result_file = run / "result.json"
    if result_file.exists():
        return json.loads(result_file.read_text())
    cfg = _config([*overrides, f"seed={seed}"], run)
    start = time.perf_counter()
    train(cfg)
    seconds = time.perf_counter() - start
    metrics = json.loads((run / "metrics.json").read_text())
    curve = _val_curve(run)
    result = {"arm": arm, "seed": seed, "overrides": list(overrides),
              "best_acc": metrics["val/acc"], "last_acc": curve[-1][1], "curve": curve,
              "steps": curve[-1][0] + 1, "seconds": round(seconds, 1),
              "checkpoint": metrics["checkpoint"]}
    result_file.write_text(json.dumps(result, indent=1) + "\n")
    return result


def prepare_teacher(overrides: Sequence[str], out: Path) -> dict[str, Any] | None:
    """Compute (or find cached) the teacher's logits on the arm's transfer set, timed."""
    cfg = _config(overrides, out / "_teacher")
    if cfg.model.get("alpha", 1.0) == 1.0 or not cfg.model.get("teacher_ckpt"):
        return None
    dm = instantiate(cfg.data)
    dm.prepare_data()
    dm.setup("fit")
    sequences = [ids for ids, _ in dm.dataset("train")]
    teacher = load_model(cfg.model.teacher_ckpt, "sentiment")
    start = time.perf_counter()
    teacher_logits(teacher, Path(cfg.model.teacher_ckpt), sequences,
                   Path(cfg.model.cache_dir) if cfg.model.cache_dir else None)
    labeled = sum(label >= 0 for _, label in dm.dataset("train"))
    return {"examples": len(sequences), "labeled": labeled,
            "seconds": round(time.perf_counter() - start, 1)}


def _mean_std(values: Sequence[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {std:.4f}"


def report(results: dict[str, list[dict[str, Any]]], prepared: dict[str, Any]) -> None:
    base_arm = next(iter(results))
    base = {r["seed"]: r for r in results[base_arm]}
    print(f"\n| arm | seeds | dev acc, best checkpoint | dev acc, last step | paired diff vs "
          f"{base_arm} (best) | steps | wall time per run |")
    print("|---|---|---|---|---|---|---|")
    for arm, rows in results.items():
        diffs = [r["best_acc"] - base[r["seed"]]["best_acc"] for r in rows if r["seed"] in base]
        diff = _mean_std(diffs) if arm != base_arm and diffs else "—"
        print(f"| {arm} | {len(rows)} | {_mean_std([r['best_acc'] for r in rows])} | "
              f"{_mean_std([r['last_acc'] for r in rows])} | {diff} | "
              f"{rows[0]['steps']} | {statistics.mean(r['seconds'] for r in rows):.0f} s |")
    for arm, rows in results.items():
        seeds = ", ".join(f"{r['seed']}: {r['best_acc']:.4f}/{r['last_acc']:.4f}" for r in rows)
        extra = prepared.get(arm)
        teacher = (f"; teacher pass over {extra['examples']:,} examples ({extra['labeled']:,} "
                   f"labeled): {extra['seconds']} s, once" if extra else "")
        print(f"- {arm} (best/last per seed) {seeds}{teacher}")


# ------------------------------------------------------------- size and latency
def _weights_bytes(model: torch.nn.Module) -> int:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell()


@torch.no_grad()
def latency(models: dict[str, Any], rounds: int) -> dict[str, dict[str, float]]:
    tokenizer = next(iter(models.values())).tokenizer  # distillation: one for all
    texts = [text for text, _ in SST2(download=False).load("val", default_data_root())[0]]
    ids = [tokenizer.encode(t) or [tokenizer.unk_id] for t in texts]
    singles = [pad_sequences([seq], tokenizer.pad_id) for seq in ids[:200]]
    batches = [pad_sequences(ids[i : i + 32], tokenizer.pad_id) for i in range(0, len(ids), 32)]
    times: dict[str, dict[str, list[float]]] = {name: {"b1": [], "b32": []} for name in models}
    for model in models.values():  # warm-up
        model.eval()
        for tokens, lengths in batches[:2] + singles[:5]:
            model(tokens, lengths)
    for _ in range(rounds):
        for name, model in models.items():
            for key, inputs in (("b1", singles), ("b32", batches)):
                start = time.perf_counter()
                for tokens, lengths in inputs:
                    model(tokens, lengths)
                times[name][key].append((time.perf_counter() - start) / len(inputs))
    return {name: {key: statistics.median(v) * 1000 for key, v in t.items()}
            for name, t in times.items()}


def size_and_latency(checkpoints: dict[str, str], rounds: int, threads: int) -> None:
    torch.set_num_threads(threads)
    models = {name: load_model(path, "sentiment") for name, path in checkpoints.items()}
    ms = latency(models, rounds)
    base = next(iter(models))
    print("\n| model | parameters | weights (float32) | checkpoint file | latency b1 | "
          "latency b32 (per batch) | speed-up b1 | speed-up b32 |")
    print("|---|---|---|---|---|---|---|---|")
    for name, model in models.items():
        params = sum(p.numel() for p in model.parameters())
        enc = model.net.encoder
        shape = (f"{'Bi' if enc.bidirectional else 'uni '}{enc.cell.upper()} H={enc.hidden_size}, "
                 f"E={model.net.embedding.embedding_dim}")
        print(f"| {name} ({shape}) | {params / 1e6:.2f} M | "
              f"{_weights_bytes(model) / 2**20:.1f} MiB | "
              f"{Path(checkpoints[name]).stat().st_size / 2**20:.1f} MiB | "
              f"{ms[name]['b1']:.2f} ms | {ms[name]['b32']:.2f} ms | "
              f"{ms[base]['b1'] / ms[name]['b1']:.1f}x | "
              f"{ms[base]['b32'] / ms[name]['b32']:.1f}x |")
    print(f"(CPU, {threads} thread(s), forward only, median of {rounds} rounds; speed-up: the "
          f"{base}'s time / the row's; the checkpoint file also holds the optimizer's state)")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.distill", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", required=True, help="the teacher's checkpoint")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--arms", nargs="+", default=["labels", "distill"],
                        help="arms to run and report, in order (the first is the baseline)")
    parser.add_argument("--arm", action="append", default=[], metavar='NAME="OVERRIDES"',
                        help="define an arm: train.py overrides, {teacher} for --teacher")
    parser.add_argument("--out", default="outputs/distill_bench")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for training "
                        "and latency")
    parser.add_argument("--rounds", type=int, default=5, help="latency rounds")
    parser.add_argument("--no-latency", action="store_true")
    args = parser.parse_args(argv)
    arms = dict(ARMS)
    for spec in args.arm:
        name, _, overrides = spec.partition("=")
        arms[name] = overrides
    unknown = [a for a in args.arms if a not in arms]
    if unknown:
        parser.error(f"unknown arms {unknown}; defined: {sorted(arms)}")

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    with bad_input_exits():
        results: dict[str, list[dict[str, Any]]] = {}
        prepared: dict[str, Any] = {}
        for arm in args.arms:
            overrides = arms[arm].replace("{teacher}", args.teacher).split()
            done = all((out / arm / f"seed{s}" / "result.json").exists() for s in args.seeds)
            if not done and (info := prepare_teacher(overrides, out)):
                prepared[arm] = info
                (out / arm).mkdir(parents=True, exist_ok=True)
                (out / arm / "teacher_pass.json").write_text(json.dumps(info) + "\n")
            elif (out / arm / "teacher_pass.json").exists():
                prepared[arm] = json.loads((out / arm / "teacher_pass.json").read_text())
            results[arm] = [run_once(arm, overrides, seed, out) for seed in args.seeds]
        report(results, prepared)
        if not args.no_latency:
            students = {arm: rows[0]["checkpoint"] for arm, rows in results.items()}
            size_and_latency({"teacher": args.teacher, **students}, args.rounds, args.threads)


if __name__ == "__main__":
    main()
