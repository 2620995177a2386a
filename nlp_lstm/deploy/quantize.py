"""int8 on the PyTorch path: ``torch.ao`` dynamic quantization of a trained model, for CPU
inference (``--quantize int8`` of the predict and translate commands, ``benchmarks/deploy.py``).

Dynamic quantization swaps ``nn.LSTM``/``nn.GRU`` and ``nn.Linear`` modules for int8-weight
versions that quantize their inputs on the fly. Our encoder is neither (its loop and fused paths
call kernels on its own parameters), so it first becomes the ``nn.LSTM`` holding its weights
(``nlp_lstm.nn.native``). Embeddings are quantized (weight-only, per row) unless the task keeps
them in float (``Task.keep_float``: an embedding tied to an output layer, or read by a
recurrence no ``torch.ao`` module covers, stays float32). The translation decoder's recurrence
is our own cell on raw parameters, which no ``torch.ao`` module covers: it stays float32, while
its linear layers
(attention, combination, output unless tied) are quantized. Transformer encoders are refused:
their layers fail once their linear layers are ``torch.ao`` modules.

PyTorch 2.13 deprecates ``torch.ao.quantization`` (in favour of the separate ``torchao``
package) and the quantized tensor types its modules hold (pytorch/pytorch#184982); both
warnings are silenced here. The ONNX path (``tasks.export --quantize int8``) is the
one to rely on: smaller and faster in ``benchmarks/deploy.py``.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.ao.quantization import (
    default_dynamic_qconfig,
    float_qparams_weight_only_qconfig,
    quantize_dynamic,
)

from nlp_lstm.nn.native import native_encoders
from nlp_lstm.nn.transformer import TransformerEncoder

QUANTIZATIONS = ("int8",)
#: The module kinds quantization covers, and how: int8 weights with activations quantized on the
#: fly, or (embeddings, which are looked up) int8 weights per row.
KINDS: dict[str, tuple[type[nn.Module], Any]] = {
    "lstm": (nn.LSTM, default_dynamic_qconfig),
    "gru": (nn.GRU, default_dynamic_qconfig),
    "linear": (nn.Linear, default_dynamic_qconfig),
    "embedding": (nn.Embedding, float_qparams_weight_only_qconfig),
}


def quantize_model(model: Any, quantize: str = "int8",
                   keep_float: Sequence[str] = ("embedding",)) -> Any:
    """A copy of ``model`` (a ``TaskModule`` in eval mode on CPU) with its network quantized,
    but for the module kinds in ``keep_float`` (the task's ``keep_float``)."""
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"unknown quantization {quantize!r}; expected one of {QUANTIZATIONS}")
    unknown = sorted(set(keep_float) - set(KINDS))
    if unknown:
        raise ValueError(f"keep_float names unknown module kinds {unknown}; expected some of "
                         f"{sorted(KINDS)}")
    if any(isinstance(m, TransformerEncoder) for m in model.net.modules()):
        raise ValueError("int8 quantization covers recurrent encoders (LSTM, GRU); this model has "
                         "a Transformer encoder, whose layers fail once their linear layers are "
                         "torch.ao modules")
    model = copy.deepcopy(model).cpu().eval()
    spec = {cls: qconfig for kind, (cls, qconfig) in KINDS.items() if kind not in keep_float}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
        warnings.filterwarnings("ignore", message="torch.ao.quantization is deprecated")
        model.net = quantize_dynamic(native_encoders(model.net), spec, dtype=torch.qint8)
    return model
