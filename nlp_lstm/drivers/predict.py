"""Prediction, generic over tasks: load the model a command names (``--ckpt PATH`` or ``--onnx
DIR``, run by ``nlp_lstm.deploy.runtime``), read its inputs (arguments or lines of a file, each
parsed
by the task's ``parse_input``, or a table file read by the task's ``table``) and call its
``predict``: one JSON object per input, or a table.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from nlp_lstm.core.cli import fail
from nlp_lstm.core.task import TableIO, text_input
from nlp_lstm.drivers.registry import TASKS, load_checkpoint, load_export


def add_model_arguments(parser: argparse.ArgumentParser, task: str | None = None,
                        quantize: bool = True) -> None:
    """``--ckpt PATH`` or ``--onnx DIR`` (exactly one, checked by ``load_predictor``),
    ``--provider`` for ``--onnx`` and, with ``quantize``, ``--quantize`` for ``--ckpt``."""
    parser.add_argument("--ckpt", help=f"{task or 'a'} checkpoint (.ckpt) written by train.py")
    parser.add_argument("--onnx", metavar="DIR",
                        help="instead of --ckpt: an export of python -m tasks.export, run with "
                             "onnxruntime (no torch)")
    parser.add_argument("--provider", default=None, metavar="NAME",
                        help="with --onnx: the onnxruntime execution provider, cpu (default), "
                             "cuda or tensorrt (onnxruntime-gpu)")
    if not quantize:
        return
    parser.add_argument("--quantize", default=None, metavar="int8",
                        help="with --ckpt: int8 dynamic quantization of the network on CPU "
                             "(torch.ao); an export is quantized by tasks.export --quantize")


def load_predictor(args: argparse.Namespace, task: str | None = None) -> Any:
    """The model that ``--ckpt`` (int8 with ``--quantize``) or ``--onnx`` names: a
    ``TaskModule`` or its ``nlp_lstm.deploy.runtime`` counterpart, which offer the same calls; with
    ``task``, a ValueError unless it is of that task. One ``error:`` line (exit 2) unless
    exactly one of the two is given."""
    if (args.ckpt is None) == (args.onnx is None):
        fail("give exactly one of --ckpt PATH (a checkpoint) and --onnx DIR (an export of "
             f"python -m tasks.export), got {'both' if args.ckpt else 'neither'}")
    if args.onnx is not None:
        if args.quantize is not None:
            fail(f"--quantize {args.quantize} applies to --ckpt; an export is quantized when "
                 "written: python -m tasks.export --quantize int8")
        try:
            import onnxruntime  # noqa: F401
        except ImportError as e:
            fail(f"--onnx needs onnxruntime ({e}): pip install 'nlp-lstm[export]'")
        return load_export(args.onnx, providers=args.provider, task=task)
    if args.provider is not None:
        fail(f"--provider {args.provider} applies to --onnx DIR; a checkpoint runs on PyTorch")
    from nlp_lstm.deploy.quantize import QUANTIZATIONS, quantize_model

    if args.quantize is not None and args.quantize not in QUANTIZATIONS:
        fail(f"unknown --quantize {args.quantize!r}; expected one of {list(QUANTIZATIONS)}")
    found, model = load_checkpoint(args.ckpt, task)
    if args.quantize is None:
        return model
    return quantize_model(model, args.quantize, keep_float=found.keep_float)


def input_parser(task: str | None) -> Callable[[str], Any]:
    """The ``parse_input`` of a registered task; text for a task this process does not know
    (an export of another package's task: its runtime checks its inputs)."""
    return TASKS[task].parse_input if task in TASKS else text_input


def read_inputs(texts: Sequence[str], input_file: str | None) -> list[tuple[str, str]]:
    """(where, line) pairs of the arguments and the lines of ``input_file`` (``-``: stdin),
    ``where`` naming the input for error messages."""
    inputs = [(f"argument {i}", text) for i, text in enumerate(texts, 1)]
    if input_file is not None:
        name = "standard input" if input_file == "-" else input_file
        try:
            if input_file == "-":
                content = sys.stdin.read()
            else:
                content = Path(input_file).read_text(encoding="utf-8")
        except FileNotFoundError:
            fail(f"input file not found: {input_file}")
        except UnicodeDecodeError as e:
            fail(f"{name} is not valid UTF-8 (byte {e.start})")
        except OSError as e:
            fail(f"cannot read {name}: {e.strerror}")
        lines = content.splitlines()
        if not any(line.strip() for line in lines):
            fail(f"{name} is empty: expected one text per line")
        inputs += [(f"line {i} of {name}", line) for i, line in enumerate(lines, 1)]
    return inputs


def task_table(task: str) -> TableIO:
    """The ``table`` of a registered task; one ``error:`` line (exit 2) for a task without
    one."""
    table = TASKS[task].table if task in TASKS else None
    if table is None:
        fail(f"--csv: a {task} model reads no tables; give its inputs as arguments or with "
             "--input FILE")
    return table


@contextlib.contextmanager
def output_stream(path: str | Path | None) -> Iterator[TextIO]:
    """Standard output, or the file ``path`` written whole or not at all: into a temporary
    file in the same folder, renamed over ``path`` at the end (an atomic replace on one file
    system) and removed if anything fails, so a failed command never leaves a partial
    file."""
    if path is None:
        yield sys.stdout
        return
    target = Path(path)
    if not target.parent.is_dir():
        raise ValueError(f"--out {path}: the folder {target.parent} does not exist")
    if target.is_dir():
        raise ValueError(f"--out {path} is a folder; expected a file name")
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        f = partial.open("x", encoding="utf-8", newline="")
    except OSError as e:
        raise ValueError(f"--out {path}: cannot write in {target.parent} ({e.strerror})"
                         ) from None
    try:
        with f:
            yield f
        partial.replace(target)
    except BaseException:  # SystemExit of fail() too
        partial.unlink(missing_ok=True)
        raise
