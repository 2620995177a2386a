"""Precision: the encoder under CPU bfloat16 autocast with and without oneDNN's bfloat16 LSTM
(both branches on any CPU, by monkeypatching the probe or the kernel), and trainer.precision
checked against the machine before any work."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, TINY, compose_train
from pytorch_lightning.accelerators import CUDAAccelerator, MPSAccelerator, XLAAccelerator
from torch import nn

from nlp_lstm.nn import LSTMEncoder, fused
from nlp_lstm.nn.fused import cpu_autocast_supported
from nlp_lstm.precision import check_precision

ONEDNN_ERROR = ("could not create a primitive descriptor for the LSTM forward propagation "
                "primitive. Run workload with environment variable ONEDNN_VERBOSE=all to get "
                "additional diagnostic information.")
LENGTHS = {"full": None, "unequal": [6, 2, 4]}


@pytest.fixture
def fresh_probe():
    """The probe's cache emptied before and after: what it learns under a patch stays here."""
    cpu_autocast_supported.cache_clear()
    yield
    cpu_autocast_supported.cache_clear()


@pytest.fixture
def without_bf16_lstm(monkeypatch, fresh_probe):
    """The fused LSTM kernel fails under CPU autocast as on an AVX2-only CPU; counts the calls."""
    real, calls = fused._kernel, {"autocast": 0, "plain": 0}

    def kernel(cell):
        def run(*args):
            if cell == "lstm" and torch.is_autocast_enabled("cpu"):
                calls["autocast"] += 1
                raise RuntimeError(ONEDNN_ERROR)
            calls["plain"] += 1
            return real(cell)(*args)

        return run

    monkeypatch.setattr(fused, "_kernel", kernel)
    return calls


def as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


def encode(enc, x, lengths, autocast):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out, final = enc(x, lengths)
    return out, as_tuple(final)


@pytest.mark.parametrize("lengths", LENGTHS, ids=str)
@pytest.mark.parametrize("impl", ["fused", "auto"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_fallback_matches_float32(monkeypatch, cell, impl, lengths):
    """Probe says no: outputs in bfloat16, as the failed kernel would have given, computed by
    the fused kernel in float32: the float32 result rounded, bit for bit."""
    monkeypatch.setattr("nlp_lstm.nn.encoder.cpu_autocast_supported", lambda cell, dtype: False)
    torch.manual_seed(11)
    enc = LSTMEncoder(8, 16, 2, bidirectional=True, cell=cell, impl=impl).eval()
    x = torch.randn(3, 6, 8, requires_grad=True)
    expected, expected_final = encode(enc, x, LENGTHS[lengths], autocast=False)
    out, final = encode(enc, x, LENGTHS[lengths], autocast=True)
    assert [t.dtype for t in (out, *final)] == [torch.bfloat16] * (1 + len(final))
    for ours, theirs in zip((out, *final), (expected, *expected_final), strict=True):
        assert torch.equal(ours, theirs.to(torch.bfloat16))
    (out.float().sin().sum() + sum(s.float().square().sum() for s in final)).backward()
    assert torch.isfinite(x.grad).all()
    if lengths == "unequal":
        assert x.grad[1, 2:].abs().max() == 0  # padded steps: no gradient


@pytest.mark.parametrize("supported", [True, False])
@pytest.mark.parametrize("lengths", LENGTHS, ids=str)
def test_probe_routes_the_kernel(monkeypatch, supported, lengths):
    """Probe says yes: the kernel runs under autocast. No: without autocast, in float32."""
    seen = []

    def kernel(cell):
        def run(x, *args):
            seen.append((torch.is_autocast_enabled("cpu"), x.dtype))
            with torch.autocast("cpu", enabled=False):  # any CPU can run this
                return real(cell)(x, *args)

        return run

    real = fused._kernel
    monkeypatch.setattr(fused, "_kernel", kernel)
    monkeypatch.setattr("nlp_lstm.nn.encoder.cpu_autocast_supported",
                        lambda cell, dtype: supported)
    enc = LSTMEncoder(8, 16, 2, bidirectional=True, impl="fused")
    encode(enc, torch.randn(3, 6, 8), LENGTHS[lengths], autocast=True)
    calls = 1 if lengths == "full" else 4  # all layers at once, or one per layer and direction
    assert seen == [(supported, torch.float32)] * calls


@pytest.mark.parametrize("supported", [True, False])
def test_auto_takes_the_fallback_for_unequal_lengths(monkeypatch, supported):
    """Without the bfloat16 LSTM, the loop would run slow bfloat16 matmuls: auto goes fused."""
    monkeypatch.setattr("nlp_lstm.nn.encoder.cpu_autocast_supported",
                        lambda cell, dtype: supported)
    enc, x, lengths = LSTMEncoder(3, 4), torch.randn(2, 5, 3), torch.tensor([5, 2])
    assert enc._resolve_impl(x, lengths) == "loop"
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert enc._resolve_impl(x, lengths) == ("loop" if supported else "fused")
        assert LSTMEncoder(3, 4, layer_norm=True)._resolve_impl(x, lengths) == "loop"


def test_probe_detects_the_onednn_failure_once(without_bf16_lstm, caplog):
    caplog.set_level(logging.INFO, logger="nlp_lstm.nn.fused")
    torch.manual_seed(12)
    enc = LSTMEncoder(8, 16, 2, bidirectional=True, impl="fused")
    x = torch.randn(3, 6, 8)
    for _ in range(3):
        for lengths in LENGTHS.values():
            out, final = encode(enc, x, lengths, autocast=True)
            assert [t.dtype for t in (out, *final)] == [torch.bfloat16] * 3
            expected, _ = encode(enc, x, lengths, autocast=False)
            assert torch.equal(out, expected.to(torch.bfloat16))
    assert cpu_autocast_supported("lstm", torch.bfloat16) is False
    assert without_bf16_lstm["autocast"] == 1  # the probe's one try, cached
    assert len(caplog.records) == 1 and "no torch.bfloat16 LSTM kernel" in caplog.text
    assert cpu_autocast_supported("gru", torch.bfloat16) is True  # the fake fails the LSTM only


def test_probe_agrees_with_nn_lstm_on_this_machine(fresh_probe):
    """Whatever this CPU is: the probe says yes exactly when nn.LSTM runs under autocast, and
    the encoder runs either way."""
    torch.manual_seed(13)
    x = torch.randn(2, 3, 4)
    for dtype in (torch.bfloat16, torch.float16):
        try:
            with torch.autocast("cpu", dtype=dtype):
                nn.LSTM(4, 5, batch_first=True)(x)
            runs = True
        except RuntimeError:
            runs = False
        for context in (torch.inference_mode, torch.no_grad):  # validation asks first
            cpu_autocast_supported.cache_clear()
            with context():
                assert cpu_autocast_supported("lstm", dtype) is runs
        with torch.autocast("cpu", dtype=dtype):
            out, (h, c) = LSTMEncoder(4, 5, impl="fused")(x)
        assert out.dtype == h.dtype == c.dtype == dtype


def test_gru_kernel_runs_in_float32_under_cpu_autocast(fresh_probe):
    """The fused GRU never reaches oneDNN: CPU autocast leaves it in float32, on every CPU."""
    assert cpu_autocast_supported("gru", torch.bfloat16) is True
    out, (h,) = encode(LSTMEncoder(4, 5, cell="gru", impl="fused"), torch.randn(2, 3, 4), None,
                       autocast=True)
    assert out.dtype == h.dtype == torch.float32


def test_bf16_mixed_training_without_bf16_lstm(without_bf16_lstm, tmp_path):
    """bf16-mixed trains as on an AVX2-only CPU, where the LSTM kernel fails under autocast."""
    from nlp_lstm.train import train

    metrics = train(compose_train(tmp_path, [*TINY, "trainer.precision=bf16-mixed",
                                             "debug=limit"]))
    assert metrics is not None and 0.0 <= metrics <= 1.0
    assert json.loads((tmp_path / "metrics.json").read_text())["val/loss"] > 0
    # The kernel failed once, in the probe; every later call ran it without autocast.
    assert without_bf16_lstm["autocast"] == 1 and without_bf16_lstm["plain"] > 10


# --------------------------------------------------------------------------- trainer.precision
@pytest.fixture
def cpu_only(monkeypatch):
    for accelerator in (CUDAAccelerator, MPSAccelerator, XLAAccelerator):
        monkeypatch.setattr(accelerator, "is_available", staticmethod(lambda: False))


@pytest.fixture
def gpu(monkeypatch):
    """One CUDA GPU; set ``gpu.bf16`` to choose whether it has bfloat16."""

    class GPU:
        bf16 = True

    monkeypatch.setattr(CUDAAccelerator, "is_available", staticmethod(lambda: True))
    for accelerator in (MPSAccelerator, XLAAccelerator):
        monkeypatch.setattr(accelerator, "is_available", staticmethod(lambda: False))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported",
                        lambda including_emulation=True: GPU.bf16)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    return GPU


@pytest.mark.parametrize("precision", ["32-true", 32, "32", "bf16-mixed", "bf16", "bf16-true",
                                       "64-true", 64])
@pytest.mark.parametrize("accelerator", ["cpu", "auto"])
def test_cpu_precisions_pass(cpu_only, precision, accelerator):
    check_precision(precision, accelerator)


ON_CPU = "; on CPU use trainer.precision=bf16-mixed or 32-true"


@pytest.mark.parametrize(("precision", "accelerator", "message"), [
    ("16-mixed", "cpu", "trainer.precision=16-mixed (float16 autocast) needs a CUDA GPU, not the "
                        f"CPU (trainer.accelerator=cpu){ON_CPU}"),
    (16, "cpu", "trainer.precision=16 (float16 autocast) needs a CUDA GPU"),
    ("16-mixed", "auto", f"(trainer.accelerator=auto, which is cpu here){ON_CPU}"),
    ("transformer-engine", "cpu", f"needs an NVIDIA GPU with Transformer Engine, not the CPU "
                                  f"(trainer.accelerator=cpu){ON_CPU}"),
    ("fp16", "cpu", "trainer.precision=fp16 is not a precision; expected one of 32-true"),
    ("16-true", "cpu", f"AdamW's eps of 1e-8 is 0 in float16, so the first step divides by "
                       f"zero{ON_CPU}"),
])
def test_cpu_precisions_refused(cpu_only, precision, accelerator, message):
    with pytest.raises(ValueError) as error:
        check_precision(precision, accelerator)
    assert message in str(error.value)


@pytest.mark.parametrize("accelerator", ["gpu", "cuda", "auto"])
def test_gpu_precisions(gpu, accelerator):
    for precision in ("16-mixed", "32-true", "bf16-mixed", "bf16-true"):
        check_precision(precision, accelerator)
    gpu.bf16 = False
    for precision in ("16-mixed", "32-true"):
        check_precision(precision, accelerator)
    for precision in ("bf16-mixed", "bf16-true", "bf16"):
        with pytest.raises(ValueError, match=f"trainer.precision={precision} needs a GPU with "
                           "bfloat16 .* Tesla T4 has none; use trainer.precision=16-mixed"):
            check_precision(precision, accelerator)


def test_train_refuses_16_mixed_on_cpu_before_any_work(tmp_path):
    proc = subprocess.run(
        [sys.executable, "train.py", "trainer.precision=16-mixed", "trainer.accelerator=cpu",
         f"hydra.run.dir={tmp_path}", f"paths.cache_dir={tmp_path}/cache"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "NLP_LSTM_DEBUG": ""},
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "error: trainer.precision=16-mixed (float16 autocast) needs a CUDA GPU, not the CPU "
        "(trainer.accelerator=cpu); on CPU use trainer.precision=bf16-mixed or 32-true"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hydra", "train.log"]  # Hydra's own
