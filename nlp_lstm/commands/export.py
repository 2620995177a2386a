"""``nlp-lstm export --ckpt PATH --out DIR [--quantize int8] [--opset N]`` (also ``python -m
tasks.export``): export a checkpoint of any task to ONNX, for ``nlp_lstm.deploy.runtime``
(onnxruntime,
no torch) and the ``--onnx`` options of the commands. Prints one JSON line (``out``, ``task``,
``graphs``, ``quantize``, ``opset``, ``bytes``)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nlp_lstm.core.cli import bad_input_exits, fail
from nlp_lstm.deploy.export import DEFAULT_OPSET, OPSETS, QUANTIZATIONS, export_model
from nlp_lstm.drivers.registry import load_checkpoint


def export(ckpt: str | Path, out: str | Path, *, quantize: str | None = None,
           opset: int = DEFAULT_OPSET) -> dict[str, Any]:
    """Export checkpoint ``ckpt`` into directory ``out`` (created) with its task's export hook;
    returns the manifest."""
    task, model = load_checkpoint(ckpt)
    if task.export is None:
        raise ValueError(f"{ckpt} is a {task.name!r} checkpoint, and that task has no ONNX export")
    return export_model(model, task.export, out, task=task.name,
                        checkpoint=Path(ckpt).name, quantize=quantize, opset=opset)


def main(argv: Sequence[str] | None = None, prog: str = "python -m tasks.export") -> None:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Export a checkpoint to ONNX graphs plus manifest.json, for "
                    "nlp_lstm.deploy.runtime (onnxruntime, no torch) and the --onnx commands.")
    parser.add_argument("--ckpt", required=True, help="checkpoint (.ckpt) written by train.py")
    parser.add_argument("--out", required=True, help="directory to write (created)")
    parser.add_argument("--quantize", default=None, metavar="int8",
                        help="int8: onnxruntime dynamic quantization of the weights")
    parser.add_argument("--opset", default=str(DEFAULT_OPSET), metavar="N",
                        help=f"ONNX opset, {OPSETS[0]}..{OPSETS[-1]} (default {DEFAULT_OPSET})")
    args = parser.parse_args(argv)
    with bad_input_exits():
        if not args.opset.isdigit():
            fail(f"--opset must be an integer in [{OPSETS[0]}, {OPSETS[-1]}], got {args.opset!r}")
        if args.quantize is not None and args.quantize not in QUANTIZATIONS:
            fail(f"unknown --quantize {args.quantize!r}; expected one of {list(QUANTIZATIONS)}")
        manifest = export(args.ckpt, args.out, quantize=args.quantize, opset=int(args.opset))
        files = [g["file"] for g in manifest["graphs"].values()]
        sizes = sum((Path(args.out) / f).stat().st_size for f in files)
        print(json.dumps({"out": str(args.out), "task": manifest["task"], "graphs": files,
                          "quantize": manifest["quantize"], "opset": manifest["opset"],
                          "bytes": sizes}))
