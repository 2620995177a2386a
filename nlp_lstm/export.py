"""Export a checkpoint to ONNX: ``python -m tasks.export --ckpt PATH --out DIR [--quantize int8]
[--opset N]``.

Writes into DIR the task's graphs, every axis but the features dynamic (batch, sequence), each
checked by ``onnx.checker``, the tokenizer(s) as ``tokenizers`` JSON, and ``manifest.json``,
which tells ``nlp_lstm.runtime`` everything else: the task, labels, special ids, max_length,
decoding defaults, and every graph's file, inputs and outputs (names, dtypes, shapes).

Graphs (B batch, T/S/P lengths, V vocabulary, L layers, H hidden, M memory, A key size,
C classes, W attention window):

- sentiment ``model``: tokens (B, T), lengths (B,) -> probs (B, C).
- translation ``encoder``: src (B, S), src_lengths (B,) -> memory (B, S, M), keys (B, S, A),
  mask (B, S) bool, and the decoder's initial state h, c (L, B, H), feed (B, H);
  ``decoder`` (one step): token (B,), h, c, feed, memory, keys, mask -> log_probs (B, V), h, c,
  feed, attention (B, S).
- generation ``prompt``: tokens (B, P) -> logits (B, V) of the next token, h, c (L, B, H)
  [, memory (B, W, H), memory_mask (B, W) with window attention]; ``step``: token (B,), that
  state -> logits (B, V), the next state. Logits, not log-probabilities: the repetition penalty
  acts on the sign of the raw logits.

Every encoder (``LSTMEncoder``) is exported as the ``torch.nn.LSTM`` holding its weights
(``nlp_lstm.nn.native``): native ONNX ``LSTM``/``GRU`` ops with ``sequence_lens`` for padding,
which onnxruntime runs with its fused kernels and can quantize. Layer-norm encoders have no
native op and are refused, and so are Transformer encoders (``encoder.kind=transformer``) for
now: their layers trace with the batch or the length fixed to the example's.

``--quantize int8``: onnxruntime dynamic quantization (int8 weights, activations quantized on
the fly) of the ``MatMul``, ``LSTM`` and ``Gather`` (embedding) weights; ``Gemm`` nodes (the
exporter's form of a linear layer on a matrix) are first rewritten as ``MatMul`` + ``Add``,
which the dynamic quantizer handles and ``Gemm`` it does not.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nlp_lstm import __version__
from nlp_lstm.checkpoint import load_model, read_checkpoint
from nlp_lstm.cli import bad_input_exits, fail
from nlp_lstm.nn.decoder import DecoderState, Memory
from nlp_lstm.nn.native import native_encoders
from nlp_lstm.nn.transformer import TransformerEncoder

#: The layout of export directories this version writes (``manifest.json``'s ``format``).
EXPORT_FORMAT = 1
OPSETS = range(14, 21)  # 14: scaled_dot_product_attention; 20: the TorchScript exporter's last
DEFAULT_OPSET = 17
QUANTIZATIONS = ("int8",)
QUANTIZED_OPS = ["MatMul", "LSTM", "Gather"]
TASKS = ("sentiment", "translation", "generation")


@dataclass
class Graph:
    """One graph to export: a module whose forward takes and returns tensors only."""

    name: str
    module: nn.Module
    args: tuple[torch.Tensor, ...]
    inputs: list[str]
    outputs: list[str]
    axes: dict[str, dict[int, str]]  # dynamic axes by input/output name


# ----------------------------------------------------------------- sentiment
class _Classify(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.net(tokens, lengths).softmax(-1)  # (B, C)


def _sentiment(model: Any) -> tuple[list[Graph], dict[str, Any]]:
    tokens = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]]).clamp(max=model.tokenizer.vocab_size - 1)
    lengths = torch.tensor([4, 2])
    graph = Graph("model", _Classify(model.net), (tokens, lengths), ["tokens", "lengths"],
                  ["probs"], {"tokens": {0: "B", 1: "T"}, "lengths": {0: "B"}, "probs": {0: "B"}})
    return [graph], {"labels": list(model.labels)}


# --------------------------------------------------------------- translation
class _Encode(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        memory, mask, state = self.net.encode(src, src_lengths)
        return memory.values, memory.keys, mask, state.h, state.c, state.feed


class _DecodeStep(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, token: torch.Tensor, h: torch.Tensor, c: torch.Tensor, feed: torch.Tensor,
                memory: torch.Tensor, keys: torch.Tensor,
                mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits, state, weights = self.net.decoder.step(token, DecoderState(h, c, feed),
                                                       Memory(memory, keys), mask)
        # decoding.py's rule: log-probabilities in at least float32.
        return logits.float().log_softmax(-1), state.h, state.c, state.feed, weights


def _translation(model: Any) -> tuple[list[Graph], dict[str, Any]]:
    net = model.net
    src = torch.tensor([[5, 6, 7, 8, 9], [10, 11, 12, 0, 0]]).clamp(
        max=model.tokenizer.vocab_size - 1)
    src_lengths = torch.tensor([5, 3])
    with torch.no_grad():
        memory, mask, state = net.encode(src, src_lengths)
    encoder = Graph(
        "encoder", _Encode(net), (src, src_lengths), ["src", "src_lengths"],
        ["memory", "keys", "mask", "h", "c", "feed"],
        {"src": {0: "B", 1: "S"}, "src_lengths": {0: "B"}, "memory": {0: "B", 1: "S"},
         "keys": {0: "B", 1: "S"}, "mask": {0: "B", 1: "S"}, "h": {1: "B"}, "c": {1: "B"},
         "feed": {0: "B"}})
    token = torch.tensor([model.target_tokenizer.bos_id] * 2)
    decoder = Graph(
        "decoder", _DecodeStep(net),
        (token, state.h, state.c, state.feed, memory.values, memory.keys, mask),
        ["token", "h", "c", "feed", "memory", "keys", "mask"],
        ["log_probs", "h_out", "c_out", "feed_out", "attention"],
        {"token": {0: "B"}, "h": {1: "B"}, "c": {1: "B"}, "feed": {0: "B"},
         "memory": {0: "B", 1: "S"}, "keys": {0: "B", 1: "S"}, "mask": {0: "B", 1: "S"},
         "log_probs": {0: "B"}, "h_out": {1: "B"}, "c_out": {1: "B"}, "feed_out": {0: "B"},
         "attention": {0: "B", 1: "S"}})
    settings = {"beam_size": model.beam_size, "length_penalty": model.length_penalty,
                "max_length_ratio": model.max_length_ratio,
                "max_length_offset": model.max_length_offset}
    return [encoder, decoder], {"decoding": settings}


# ---------------------------------------------------------------- generation
def _state_names(net: nn.Module) -> list[str]:
    """The LM state as flat graph tensors: h, c (LSTM), memory, memory_mask (window)."""
    return ["h"] + (["c"] if net.cell == "lstm" else []) + (
        ["memory", "memory_mask"] if net.attend is not None else [])


def _flat(state: Any, names: list[str]) -> tuple[torch.Tensor, ...]:
    return tuple(getattr(state, name) for name in names)


class _Prompt(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net, self.names = net, _state_names(net)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits, state = self.net.prompt(tokens)  # (B, V)
        return (logits, *_flat(state, self.names))


class _Step(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net, self.names = net, _state_names(net)

    def forward(self, token: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        from nlp_lstm.generation.net import LMState

        logits, new = self.net.step(token, LMState(**dict(zip(self.names, state, strict=True))))
        return (logits, *_flat(new, self.names))


def _generation(model: Any) -> tuple[list[Graph], dict[str, Any]]:
    net = model.net
    names = _state_names(net)
    tokens = torch.tensor([[5, 6, 7], [8, 9, 10]]).clamp(max=model.tokenizer.vocab_size - 1)
    batch = {"h": 1, "c": 1, "memory": 0, "memory_mask": 0}  # the batch axis of each
    prompt = Graph("prompt", _Prompt(net), (tokens,), ["tokens"], ["logits", *names],
                   {"tokens": {0: "B", 1: "P"}, "logits": {0: "B"}}
                   | {n: {batch[n]: "B"} for n in names})
    with torch.no_grad():
        _, *state = prompt.module(tokens)
    outputs = [f"{n}_out" for n in names]
    step = Graph("step", _Step(net), (tokens[:, 0], *state), ["token", *names],
                 ["logits", *outputs],
                 {"token": {0: "B"}, "logits": {0: "B"}} | {n: {batch[n]: "B"} for n in names}
                 | {o: {batch[n]: "B"} for n, o in zip(names, outputs, strict=True)})
    info = {"separator": model.separator, "state": names, "cell": net.cell,
            "attention": net.attention, "num_layers": net.num_layers,
            "hidden_size": net.hidden_size,
            "attention_window": net.attend.window if net.attend is not None else None}
    return [prompt, step], info


BUILDERS = {"sentiment": _sentiment, "translation": _translation, "generation": _generation}


# ------------------------------------------------------------------ writing
@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Hold back what native code writes to stderr (the exporter's C++ shape-inference notes
    on PackPadded, which it handles); shown only if the block fails."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _export_graph(graph: Graph, path: Path, opset: int) -> None:
    import onnx

    with warnings.catch_warnings(), torch.no_grad(), _quiet_native_stderr():
        # The tracer warns about every Python-level check of shapes and lengths in our
        # modules; those checks pass on the example and are not part of the graph.
        warnings.simplefilter("ignore")
        torch.onnx.export(graph.module, graph.args, str(path), dynamo=False,
                          opset_version=opset, input_names=graph.inputs,
                          output_names=graph.outputs, dynamic_axes=graph.axes,
                          do_constant_folding=True)
        outputs = graph.module(*graph.args)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    # The exporter's shape inference names some fixed sizes (H, W) as if they varied and some
    # as B: declare exactly the dynamic axes, and the example's sizes elsewhere.
    model = onnx.load(str(path))
    examples = dict(zip(graph.inputs, graph.args, strict=True))
    examples |= dict(zip(graph.outputs, outputs, strict=True))
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        dynamic = graph.axes.get(value.name, {})
        for axis, size in enumerate(examples[value.name].shape):
            dims[axis].Clear()
            if axis in dynamic:
                dims[axis].dim_param = dynamic[axis]
            else:
                dims[axis].dim_value = size
    onnx.save(model, str(path))


def gemm_to_matmul(model: Any) -> int:
    """Rewrite every ``Gemm`` (alpha = beta = 1, no transposed A, constant B) of an ONNX model
    as ``MatMul`` (+ ``Add`` of the bias), in place; returns how many. The dynamic quantizer
    quantizes ``MatMul`` weights, not ``Gemm`` ones."""
    import numpy as np
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {init.name: init for init in graph.initializer}
    nodes, count = [], 0
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if (node.op_type != "Gemm" or attrs.get("alpha", 1.0) != 1.0
                or attrs.get("beta", 1.0) != 1.0 or attrs.get("transA", 0)
                or node.input[1] not in inits):
            nodes.append(node)
            continue
        weight = numpy_helper.to_array(inits[node.input[1]])  # (N, K) if transB else (K, N)
        if attrs.get("transB", 0):
            weight = np.ascontiguousarray(weight.T)  # (K, N)
        name = f"{node.name or node.output[0]}_matmul_weight"
        graph.initializer.append(numpy_helper.from_array(weight, name))
        has_bias = len(node.input) > 2 and node.input[2]
        product = f"{node.output[0]}_matmul" if has_bias else node.output[0]
        nodes.append(helper.make_node("MatMul", [node.input[0], name], [product],
                                      name=f"{node.name}_MatMul"))
        if has_bias:
            nodes.append(helper.make_node("Add", [product, node.input[2]], [node.output[0]],
                                          name=f"{node.name}_Add"))
        count += 1
    del graph.node[:]
    graph.node.extend(nodes)
    # Initializers only the Gemms read (their untransposed weights) are dropped.
    used = {name for node in graph.node for name in node.input}
    keep = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    return count


def quantize_int8(source: Path, target: Path) -> None:
    """onnxruntime dynamic int8 quantization of ``source`` into ``target``."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(source))
    gemm_to_matmul(model)
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "matmul.onnx"
        onnx.save(model, str(staged))
        logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))
        # (the quantizer logs a hint about pre-processing meant for convolutional networks)
        quantize_dynamic(str(staged), str(target), op_types_to_quantize=QUANTIZED_OPS,
                         weight_type=QuantType.QInt8)


def _signature(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Inputs and outputs of an ONNX file: name, numpy dtype, shape (axis names or sizes)."""
    import onnx
    from onnx import helper

    model = onnx.load(str(path), load_external_data=False)

    def describe(values: Any) -> list[dict[str, Any]]:
        out = []
        for v in values:
            tensor = v.type.tensor_type
            dtype = helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
            shape = [d.dim_param or d.dim_value for d in tensor.shape.dim]
            out.append({"name": v.name, "dtype": dtype, "shape": shape})
        return out

    return {"inputs": describe(model.graph.input), "outputs": describe(model.graph.output)}


def check_graph(path: Path) -> None:
    """``onnx.checker`` on a written graph (a ValueError if it fails)."""
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as e:
        raise ValueError(f"the exported graph {path.name} fails onnx.checker: "
                         f"{str(e).splitlines()[0]}") from None


def export(ckpt: str | Path, out: str | Path, *, quantize: str | None = None,
           opset: int = DEFAULT_OPSET) -> dict[str, Any]:
    """Export checkpoint ``ckpt`` into directory ``out`` (created); returns the manifest."""
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ValueError(f"unknown quantization {quantize!r}; expected one of {QUANTIZATIONS}")
    if isinstance(opset, bool) or not isinstance(opset, int) or opset not in OPSETS:
        raise ValueError(f"opset must be an integer in [{OPSETS[0]}, {OPSETS[-1]}], got {opset!r}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; expected a directory (created if missing)")
    task = read_checkpoint(ckpt)["nlp_lstm"].get("task")
    if task not in BUILDERS:
        raise ValueError(f"{ckpt} is a {task!r} checkpoint; export knows {sorted(BUILDERS)}")
    model = load_model(ckpt, task=task)
    if any(isinstance(m, TransformerEncoder) for m in model.net.modules()):
        raise ValueError(f"{ckpt} has a Transformer encoder (encoder.kind=transformer); the "
                         "export covers recurrent encoders (LSTM, GRU) only so far")
    model.net = native_encoders(copy.deepcopy(model.net)).eval()
    graphs, info = BUILDERS[task](model)
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {
        "format": EXPORT_FORMAT, "nlp_lstm_version": __version__, "task": task,
        "model": type(model).__name__, "checkpoint": Path(ckpt).name, "opset": opset,
        "quantize": quantize, "max_length": int(model.max_length),
        "tokenizer": "tokenizer.json",
        "special_ids": {"pad": model.tokenizer.pad_id, "unk": model.tokenizer.unk_id,
                        "bos": model.tokenizer.bos_id, "eos": model.tokenizer.eos_id},
        "graphs": {}, **info}
    (out / "tokenizer.json").write_text(model.tokenizer.to_json(), encoding="utf-8")
    target = getattr(model, "target_tokenizer", None)
    if target is not None and target is not model.tokenizer:
        (out / "target_tokenizer.json").write_text(target.to_json(), encoding="utf-8")
        manifest["target_tokenizer"] = "target_tokenizer.json"
    with tempfile.TemporaryDirectory() as tmp:
        for graph in graphs:
            path = out / f"{graph.name}.onnx"
            if quantize is None:
                _export_graph(graph, path, opset)
            else:
                fp32 = Path(tmp) / f"{graph.name}.onnx"
                _export_graph(graph, fp32, opset)
                quantize_int8(fp32, path)
            check_graph(path)
            manifest["graphs"][graph.name] = {"file": path.name, **_signature(path)}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n",
                                       encoding="utf-8")
    return manifest


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tasks.export",
        description="Export a checkpoint to ONNX graphs plus manifest.json, for "
                    "nlp_lstm.runtime (onnxruntime, no torch) and the --onnx commands.")
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
