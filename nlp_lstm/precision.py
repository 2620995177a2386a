"""Which ``trainer.precision`` runs where, checked before any data is prepared.

Lightning 2.6 checks less, and only when the trainer is built, after the data: ``16-mixed`` on
CPU becomes ``bf16-mixed`` with a warning, a GPU's bfloat16 support is not checked, and
``transformer-engine`` on CPU fails on the missing package. Here each is one clear error, raised
before any work, naming what to use instead.

Checked here: the name; ``16-mixed`` and ``transformer-engine`` need a CUDA GPU; ``16-true``
diverges on CPU at the first AdamW step (measured); the bfloat16
precisions on a CUDA GPU need compute capability 8.0 (Ampere) or newer. On CPU, ``bf16-mixed``
runs on every CPU (``LSTMEncoder`` falls back where oneDNN has no bfloat16 LSTM). README,
"Precision", says what runs where.
"""

from __future__ import annotations

import torch
from pytorch_lightning.accelerators import CUDAAccelerator, MPSAccelerator, XLAAccelerator

PRECISIONS = ("32-true", "bf16-mixed", "16-mixed", "64-true", "bf16-true", "16-true",
              "transformer-engine", "transformer-engine-float16")
ALIASES = {"32": "32-true", "64": "64-true", "16": "16-mixed", "bf16": "bf16-mixed"}  # Lightning's
BFLOAT16 = ("bf16-mixed", "bf16-true", "transformer-engine")  # transformer-engine: bf16 weights


def resolve_accelerator(accelerator: str) -> str:
    """The accelerator Lightning runs for ``trainer.accelerator``: "auto" and "gpu" resolved
    by availability, in Lightning's order (tpu, mps, cuda, cpu; "gpu": mps, cuda)."""
    if accelerator == "auto":
        if XLAAccelerator.is_available():
            return "tpu"
        accelerator = "gpu" if MPSAccelerator.is_available() or CUDAAccelerator.is_available() \
            else "cpu"
    if accelerator == "gpu":
        return "mps" if MPSAccelerator.is_available() else "cuda"
    return accelerator


def check_precision(precision: str | int, accelerator: str) -> None:
    """Raise ValueError when ``trainer.precision`` is unknown or cannot run on
    ``trainer.accelerator`` on this machine.

    Args:
        precision: a Lightning precision, e.g. "bf16-mixed", or one of its aliases (16, "bf16").
        accelerator: ``trainer.accelerator``: "auto", "cpu", "gpu", "cuda", ...
    """
    name = ALIASES.get(str(precision), str(precision))
    if name not in PRECISIONS:
        raise ValueError(f"trainer.precision={precision} is not a precision; expected one of "
                         f"{', '.join(PRECISIONS)}")
    device = resolve_accelerator(accelerator)
    where = f"trainer.accelerator={accelerator}" + (f", which is {device} here"
                                                    if device != accelerator else "")
    if device == "cpu" and name == "16-mixed":
        raise ValueError(f"trainer.precision={precision} (float16 autocast) needs a CUDA GPU, not "
                         f"the CPU ({where}); on CPU use trainer.precision=bf16-mixed or 32-true")
    if device == "cpu" and name == "16-true":
        raise ValueError(f"trainer.precision={precision} (float16 weights) diverges on the CPU "
                         f"({where}): AdamW's eps of 1e-8 is 0 in float16, so the first step "
                         f"divides by zero; on CPU use trainer.precision=bf16-mixed or 32-true")
    if device == "cpu" and name.startswith("transformer-engine"):
        raise ValueError(f"trainer.precision={precision} needs an NVIDIA GPU with Transformer "
                         f"Engine, not the CPU ({where}); on CPU use trainer.precision=bf16-mixed "
                         f"or 32-true")
    # Without a visible GPU, Lightning's own error about the accelerator says it better.
    if device == "cuda" and name in BFLOAT16 and torch.cuda.is_available() \
            and not torch.cuda.is_bf16_supported(including_emulation=False):
        gpu = torch.cuda.get_device_name()
        raise ValueError(f"trainer.precision={precision} needs a GPU with bfloat16 (compute "
                         f"capability 8.0 or newer), and {gpu} has none; use "
                         f"trainer.precision=16-mixed or 32-true")
