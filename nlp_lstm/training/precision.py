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

``auto`` picks one (``choose_precision``): on a CUDA GPU bf16-mixed where it has bfloat16, else
16-mixed; on a CPU bf16-mixed only where the CPU computes bfloat16 natively (AVX512-BF16 or
AMX: elsewhere it is emulated, and slower) and a short probe of the model's own training step
shows it faster at an equal loss; else 32-true.
"""

from __future__ import annotations

import copy
import statistics
import time
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

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


AUTO = "auto"
PROBE_SPEEDUP = 1.1  # bf16-mixed must be at least this much faster ...
PROBE_LOSS_TOLERANCE = 0.02  # ... at a loss within this relative distance of 32-true's
Probe = Callable[[], dict[str, dict[str, float]]]


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX tiles)."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def probe_training_step(model: Any, batch: Any, steps: int = 3) -> dict[str, dict[str, float]]:
    """Seconds per forward and backward pass of ``model.training_step(batch)`` and its loss, in
    32-true and under CPU bfloat16 autocast, on a copy of the model: the model, its state and
    the random number generators are left as they were. The first pass of each is a warmup."""
    probe = copy.deepcopy(model).train()
    results = {}
    with torch.random.fork_rng(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # self.log without a trainer
        for precision in ("32-true", "bf16-mixed"):
            autocast = (torch.autocast("cpu", dtype=torch.bfloat16)
                        if precision == "bf16-mixed" else nullcontext())
            seconds, loss = [], 0.0
            for _ in range(steps + 1):
                torch.manual_seed(0)  # the same dropout masks for both precisions
                begin = time.perf_counter()
                with autocast:
                    out = probe.training_step(batch, 0)
                out = out["loss"] if isinstance(out, dict) else out
                out.backward()
                seconds.append(time.perf_counter() - begin)
                probe.zero_grad(set_to_none=True)
                loss = float(out.detach())
            results[precision] = {"seconds": statistics.median(seconds[1:]), "loss": loss}
    return results


def choose_precision(accelerator: str, probe: Probe | None = None, *,
                     native: bool | None = None) -> tuple[str, str, dict[str, Any]]:
    """What ``trainer.precision=auto`` runs: (precision, why, the probe's measurements).

    Args:
        accelerator: ``trainer.accelerator``.
        probe: measures both precisions on the model (``probe_training_step``); None: the
            CPU's features decide alone (several processes must agree without measuring).
        native: whether the CPU has native bfloat16; None: ask it (``native_bf16``).
    """
    device = resolve_accelerator(accelerator)
    if device == "cuda":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False):
            return "bf16-mixed", "the GPU computes bfloat16", {}
        return "16-mixed", "the GPU has no bfloat16: float16 with a gradient scaler", {}
    if device != "cpu":
        return "32-true", f"{device}: no mixed precision is chosen automatically there", {}
    if not (native_bf16() if native is None else native):
        return "32-true", "this CPU has no native bfloat16 (AVX512-BF16 or AMX)", {}
    if probe is None:
        return "bf16-mixed", "this CPU computes bfloat16 natively (not probed)", {}
    measured = probe()
    fp32, bf16 = measured["32-true"], measured["bf16-mixed"]
    speedup = fp32["seconds"] / max(bf16["seconds"], 1e-9)
    drift = abs(bf16["loss"] - fp32["loss"]) / max(abs(fp32["loss"]), 1e-9)
    facts = f"bf16-mixed {speedup:.2f}x the speed of 32-true, loss {drift:.1%} apart"
    if drift > PROBE_LOSS_TOLERANCE:
        return "32-true", f"{facts}: the loss differs by more than {PROBE_LOSS_TOLERANCE:.0%}", \
            measured
    if speedup < PROBE_SPEEDUP:
        return "32-true", f"{facts}: not {PROBE_SPEEDUP}x faster", measured
    return "bf16-mixed", facts, measured


def check_precision(precision: str | int, accelerator: str) -> None:
    """Raise ValueError when ``trainer.precision`` is unknown or cannot run on
    ``trainer.accelerator`` on this machine.

    Args:
        precision: a Lightning precision, e.g. "bf16-mixed", or one of its aliases (16, "bf16").
        accelerator: ``trainer.accelerator``: "auto", "cpu", "gpu", "cuda", ...
    """
    name = ALIASES.get(str(precision), str(precision))
    if name == AUTO:
        return  # choose_precision picks one that runs here
    if name not in PRECISIONS:
        raise ValueError(f"trainer.precision={precision} is not a precision; expected one of "
                         f"auto, {', '.join(PRECISIONS)}")
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
