"""Precision: the encoder under CPU bfloat16 autocast with and without oneDNN's bfloat16 LSTM
(both branches on any CPU, by monkeypatching the probe or the kernel), and trainer.precision
checked against the machine before any work."""

from __future__ import annotations

import json
import logging
import math
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
from nlp_lstm.training.precision import check_precision, choose_precision, probe_training_step

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
    from nlp_lstm.drivers.train import train

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
    ("fp16", "cpu", "trainer.precision=fp16 is not a precision; expected one of auto, 32-true"),
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


# --------------------------------------------------------------------- precision: auto
def _measured(fp32: float, bf16: float, loss_bf16: float = 1.0) -> dict:
    return {"32-true": {"seconds": fp32, "loss": 1.0},
            "bf16-mixed": {"seconds": bf16, "loss": loss_bf16}}


def test_auto_without_native_bf16_takes_32_true_and_never_probes(cpu_only):
    def probe():
        raise AssertionError("no probe on a CPU without native bfloat16")

    chosen, why, measured = choose_precision("cpu", probe, native=False)
    assert (chosen, measured) == ("32-true", {})
    assert "no native bfloat16" in why


@pytest.mark.parametrize(("measured", "chosen", "why"), [
    (_measured(1.0, 0.6), "bf16-mixed", "bf16-mixed 1.67x the speed of 32-true, loss 0.0% apart"),
    (_measured(1.0, 0.95), "32-true", "not 1.1x faster"),
    (_measured(1.0, 0.5, loss_bf16=1.05), "32-true", "the loss differs by more than 2%"),
])
def test_auto_with_native_bf16_follows_the_probe(cpu_only, measured, chosen, why):
    got, reason, facts = choose_precision("cpu", lambda: measured, native=True)
    assert (got, facts) == (chosen, measured)
    assert why in reason


def test_auto_on_gpus(gpu):
    assert choose_precision("auto")[0] == "bf16-mixed"
    gpu.bf16 = False
    assert choose_precision("gpu")[0] == "16-mixed"


def test_probe_measures_the_models_own_training_step(tmp_path, one_thread):
    from hydra.utils import instantiate

    from nlp_lstm.drivers.registry import get_task

    cfg = compose_train(tmp_path, TINY)
    dm = instantiate(cfg.data)
    dm.prepare_data()
    dm.setup("fit")
    model = instantiate(cfg.model, **get_task("sentiment").model_inputs(dm), _convert_="all")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    measured = probe_training_step(model, next(iter(dm.train_dataloader())), steps=1)
    assert set(measured) == {"32-true", "bf16-mixed"}
    assert all(m["seconds"] > 0 and math.isfinite(m["loss"]) for m in measured.values())
    assert abs(measured["32-true"]["loss"] - measured["bf16-mixed"]["loss"]) < 0.1
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # a copy trained
    assert torch.equal(torch.get_rng_state(), rng)


@pytest.mark.parametrize("native", [False, True])
def test_train_with_auto_precision_logs_its_choice(tmp_path, monkeypatch, one_thread, native):
    """Both branches through the train command: the choice printed, in precision.json and
    metrics.json, and the trainer runs it."""
    from nlp_lstm.drivers.train import train
    from nlp_lstm.training import precision as module

    monkeypatch.setattr(module, "native_bf16", lambda: native)
    if native:  # the real probe on this CPU may go either way: make bf16 the faster here
        monkeypatch.setattr(module, "PROBE_SPEEDUP", 0.0)
    train(compose_train(tmp_path, [*TINY, "trainer.precision=auto", "trainer.max_epochs=1"]))
    record = json.loads((tmp_path / "precision.json").read_text())
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    expected = "bf16-mixed" if native else "32-true"
    assert record["requested"] == "auto" and record["chosen"] == expected
    assert metrics["precision"] == expected
    assert bool(record["probe"]) == native
