"""Deployment formats of a sentiment or translation checkpoint, side by side: PyTorch float32,
PyTorch int8 (``torch.ao`` dynamic quantization, ``nlp_lstm.deploy.quantize``), ONNX float32 and
ONNX
int8 (``python -m tasks.export [--quantize int8]``, run by ``nlp_lstm.deploy.runtime``).

    python -m benchmarks.deploy --ckpt PATH [--split val] [--limit N] [--threads 2]
        [--rounds 7] [--beam-size 5] [--length-penalty A] [data=... overrides of the eval config]

Per format: the size of the weights (PyTorch: the network's state dict as ``torch.save``
writes it; ONNX: the graph files) and its ratio to PyTorch float32; CPU latency of one call on
1 and on 32 texts of the split (sentiment: ``predict``; translation: ``translate`` with
beam ``--beam-size``), median of ``--rounds`` rounds after 2 warm-up calls, the formats
interleaved within each round so that a busy machine slows them alike; and quality on the
split: accuracy (sentiment) or sacreBLEU BLEU with beam ``--beam-size`` as the translation
eval computes it (translation), plus how often the format's answer equals PyTorch float32's.
``--limit N`` keeps the first N examples for quality (latency always uses the first 32).
Translations use the checkpoint's length penalty (``--length-penalty`` sets another for all).

The data defaults to the real sets (``data=sst2`` for sentiment, ``data=multi30k`` for
translation) under ``$NLP_LSTM_DATA``. Ends with one JSON line of all numbers.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from nlp_lstm.commands.export import export
from nlp_lstm.core.cli import bad_input_exits, compose_config, fail
from nlp_lstm.deploy import runtime
from nlp_lstm.deploy.quantize import quantize_model
from nlp_lstm.drivers.registry import get_task, load_model
from nlp_lstm.training.checkpoint import read_checkpoint
from nlp_lstm.translation.module import corpus_scores

DEFAULT_DATA = {"sentiment": "sst2", "translation": "multi30k"}


def torch_bytes(model: Any) -> int:
    buffer = io.BytesIO()
    torch.save(model.net.state_dict(), buffer)
    return len(buffer.getvalue())


def onnx_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.glob("*.onnx"))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.deploy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--split", default="val")
    parser.add_argument("--limit", type=int, default=None, help="examples for quality")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--length-penalty", type=float, default=None, metavar="ALPHA",
                        help="translation: GNMT alpha for every format (default: the "
                             "checkpoint's, which its export carries)")
    parser.add_argument("overrides", nargs="*", help="eval config overrides, e.g. data=...")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    with bad_input_exits():
        task = read_checkpoint(args.ckpt)["nlp_lstm"].get("task")
        if task not in DEFAULT_DATA:
            fail(f"{args.ckpt} is a {task!r} checkpoint; this benchmark takes "
                 f"{sorted(DEFAULT_DATA)}")
        overrides = list(args.overrides)
        if not any(o.startswith("data=") for o in overrides):
            overrides.append(f"data={DEFAULT_DATA[task]}")
        cfg = compose_config("eval", [f"task={task}", f"ckpt_path={args.ckpt}",
                                      f"split={args.split}", *overrides])
        model = load_model(args.ckpt, task=task)
        # prepare_eval applies the eval config's decoding settings to the model it is given:
        # give it a copy, so that every format decodes with the checkpoint's (as its export).
        datamodule = get_task(task).prepare_eval(cfg, load_model(args.ckpt, task=task))
        examples = datamodule._examples(args.split)[: args.limit]
        texts = [x for x, _ in examples]
        golds = [y for _, y in examples]
        with tempfile.TemporaryDirectory() as tmp:
            formats = {"PyTorch fp32": (model, torch_bytes(model)),
                       "PyTorch int8 (torch.ao)": None, "ONNX fp32": None, "ONNX int8": None}
            quantized = quantize_model(model, keep_float=get_task(task).keep_float)
            formats["PyTorch int8 (torch.ao)"] = (quantized, torch_bytes(quantized))
            for name, quantize in (("ONNX fp32", None), ("ONNX int8", "int8")):
                path = Path(tmp) / name.replace(" ", "_")
                export(args.ckpt, path, quantize=quantize)
                formats[name] = (runtime.load(path, threads=args.threads), onnx_bytes(path))
            if task == "translation" and args.length_penalty is not None:
                for decoder, _ in formats.values():
                    decoder.length_penalty = args.length_penalty
            rows = measure(task, formats, texts, golds, args)
    report(task, args, cfg, len(texts), rows)


def call(task: str, model: Any, texts: list[str], beam: int) -> list[Any]:
    if task == "sentiment":
        return [r["label"] for r in model.predict(texts)[0]]
    return [r[0]["translation"] for r in model.translate(texts, beam_size=beam)[0]]


def measure(task: str, formats: dict[str, tuple[Any, int]], texts: list[str], golds: list[Any],
            args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    batches = {1: texts[:1], 32: texts[:32]}
    timings: dict[str, dict[int, list[float]]] = {n: {1: [], 32: []} for n in formats}
    for model, _ in formats.values():
        for batch in batches.values():
            for _ in range(2):  # warm-up: first calls allocate, onnxruntime plans
                call(task, model, batch, args.beam_size)
    for _ in range(args.rounds):
        for name, (model, _) in formats.items():
            for size, batch in batches.items():
                start = time.perf_counter()
                call(task, model, batch, args.beam_size)
                timings[name][size].append(time.perf_counter() - start)
    answers: dict[str, list[Any]] = {}
    rows = {}
    for name, (model, size) in formats.items():
        step = 64 if task == "sentiment" else 32
        out: list[Any] = []
        start = time.perf_counter()
        for i in range(0, len(texts), step):
            out += call(task, model, texts[i : i + step], args.beam_size)
        seconds = time.perf_counter() - start
        answers[name] = out
        if task == "sentiment":
            labels = list(model.labels)
            quality = sum(labels.index(a) == g for a, g in zip(out, golds, strict=True)) / len(out)
        else:
            quality = corpus_scores(out, golds)["bleu"]
        rows[name] = {"bytes": size, "ms_batch1": 1000 * statistics.median(timings[name][1]),
                      "ms_batch32": 1000 * statistics.median(timings[name][32]),
                      "quality": quality, "quality_seconds": seconds}
        if task == "translation":
            rows[name]["length_penalty"] = model.length_penalty
    base = answers["PyTorch fp32"]
    for name, row in rows.items():
        row["same_as_fp32"] = sum(a == b for a, b in zip(answers[name], base, strict=True)) \
            / len(base)
    return rows


def report(task: str, args: argparse.Namespace, cfg: Any, n: int,
           rows: dict[str, dict[str, Any]]) -> None:
    metric = "accuracy" if task == "sentiment" else f"BLEU (beam {args.beam_size})"
    base = rows["PyTorch fp32"]
    what = "predict"
    if task == "translation":
        alpha = next(iter(rows.values()))["length_penalty"]
        what = f"translate, beam {args.beam_size}, length penalty alpha {alpha}"
    print(f"{cfg.data._target_.rsplit('.', 1)[-1]} {args.split}: {n} examples for quality; "
          f"latency of {what}, median of {args.rounds} rounds; {args.threads} threads; "
          f"checkpoint {args.ckpt}")
    print(f"| format | size | vs fp32 | batch 1 (ms) | batch 32 (ms) | {metric} | "
          f"same answer as PyTorch fp32 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    scale = 100.0 if task == "sentiment" else 1.0
    for name, row in rows.items():
        print(f"| {name} | {row['bytes'] / 2**20:.2f} MiB | {base['bytes'] / row['bytes']:.2f}x "
              f"smaller | {row['ms_batch1']:.2f} ({base['ms_batch1'] / row['ms_batch1']:.2f}x) | "
              f"{row['ms_batch32']:.1f} ({base['ms_batch32'] / row['ms_batch32']:.2f}x) | "
              f"{scale * row['quality']:.2f} | {100 * row['same_as_fp32']:.1f}% |")
    print(json.dumps({"task": task, "split": args.split, "examples": n,
                      "threads": args.threads, "formats": rows}))


if __name__ == "__main__":
    main()
