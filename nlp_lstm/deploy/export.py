"""Export a trained model to ONNX, for ``nlp_lstm.deploy.runtime`` (onnxruntime, no torch).

Generic: the task's ``export`` hook (``nlp_lstm.<task>.export``) builds its graphs, each a
module whose forward takes and returns tensors, and says what the runtime needs besides (its
fitted state and settings). This module writes into the export directory every graph, every
axis but the features dynamic (batch, sequence), each checked by ``onnx.checker``; the fitted
state (tokenizers, scalers) as JSON files; and ``manifest.json``, which tells the runtime
everything else: the task, ``max_length``, the task's settings and every graph's file, inputs
and outputs (names, dtypes, shapes).

Every encoder (``LSTMEncoder``) is exported as the ``torch.nn.LSTM`` holding its weights
(``nlp_lstm.nn.native``): native ONNX ``LSTM``/``GRU`` ops with ``sequence_lens`` for padding,
which onnxruntime runs with its fused kernels and can quantize. Layer-norm encoders have no
native op and are refused, and so are Transformer encoders (``encoder.kind=transformer``) for
now: their layers trace with the batch or the length fixed to the example's.

``quantize="int8"``: onnxruntime dynamic quantization (int8 weights, activations quantized on
the fly) of the ``MatMul``, ``LSTM`` and ``Gather`` (embedding) weights; ``Gemm`` nodes (the
exporter's form of a linear layer on a matrix) are first rewritten as ``MatMul`` + ``Add``,
which the dynamic quantizer handles and ``Gemm`` it does not.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nlp_lstm import __version__
from nlp_lstm.fitted import Fitted
from nlp_lstm.nn.native import native_encoders
from nlp_lstm.nn.transformer import TransformerEncoder

#: The layout of export directories this version writes (``manifest.json``'s ``format``);
#: ``nlp_lstm.deploy.runtime.graphs`` reads it and format 1 (nlp-lstm 0.2.0).
EXPORT_FORMAT = 2
OPSETS = range(14, 21)  # 14: scaled_dot_product_attention; 20: the TorchScript exporter's last
DEFAULT_OPSET = 17
QUANTIZATIONS = ("int8",)
QUANTIZED_OPS = ["MatMul", "LSTM", "Gather"]


@dataclass
class Graph:
    """One graph to export: a module whose forward takes and returns tensors only."""

    name: str
    module: nn.Module
    args: tuple[torch.Tensor, ...]
    inputs: list[str]
    outputs: list[str]
    axes: dict[str, dict[int, str]]  # dynamic axes by input/output name


@dataclass
class Export:
    """What a task's export hook returns: its graphs, the fitted state its runtime reads (by
    name: written as ``<name>.json``), and settings for the manifest (JSON-able)."""

    graphs: list[Graph]
    fitted: dict[str, Fitted]
    info: dict[str, Any]


class Probabilities(nn.Module):
    """A classifier network as a graph module: its probabilities (B, C) instead of its logits."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.net(*inputs).softmax(-1)  # (B, C)


def special_ids(tokenizer: Any) -> dict[str, int]:
    """A tokenizer's special ids, for the manifest."""
    return {"pad": tokenizer.pad_id, "unk": tokenizer.unk_id, "bos": tokenizer.bos_id,
            "eos": tokenizer.eos_id}


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


def export_model(model: Any, build: Callable[[Any], Export], out: str | Path, *,
                 task: str, checkpoint: str = "", quantize: str | None = None,
                 opset: int = DEFAULT_OPSET) -> dict[str, Any]:
    """Export ``model`` (a ``TaskModule`` of ``task``) into directory ``out`` (created) with the
    task's ``build`` hook; returns the manifest."""
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ValueError(f"unknown quantization {quantize!r}; expected one of {QUANTIZATIONS}")
    if isinstance(opset, bool) or not isinstance(opset, int) or opset not in OPSETS:
        raise ValueError(f"opset must be an integer in [{OPSETS[0]}, {OPSETS[-1]}], got {opset!r}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; expected a directory (created if missing)")
    if any(isinstance(m, TransformerEncoder) for m in model.net.modules()):
        raise ValueError(f"{checkpoint or 'the model'} has a Transformer encoder "
                         "(encoder.kind=transformer); the export covers recurrent encoders "
                         "(LSTM, GRU) only so far")
    model.net = native_encoders(copy.deepcopy(model.net)).eval()
    spec = build(model)
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {
        "format": EXPORT_FORMAT, "nlp_lstm_version": __version__, "task": task,
        "model": type(model).__name__, "checkpoint": checkpoint, "opset": opset,
        "quantize": quantize, "max_length": int(model.max_length), "fitted": {}, "graphs": {},
        **spec.info}
    for name, state in spec.fitted.items():
        (out / f"{name}.json").write_text(state.to_json(), encoding="utf-8")
        manifest["fitted"][name] = {"file": f"{name}.json", "kind": type(state).__name__}
    with tempfile.TemporaryDirectory() as tmp:
        for graph in spec.graphs:
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
