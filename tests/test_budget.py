"""Time budget: the schedule sized by the measured step time, ending at the budget on a fast and
a slow "machine", with the last step validated; the plan survives a resume. A run stopped by
max_steps validates its last step too."""

from __future__ import annotations

import json
import math
import time
from types import SimpleNamespace

import pytest
import torch
from conftest import TINY, compose_train
from pytorch_lightning.callbacks import Callback

from nlp_lstm.drivers.train import train
from nlp_lstm.training.budget import TimeBudget, parse_duration, validations_in
from nlp_lstm.training.finetune import SlantedTriangularLR
from nlp_lstm.training.optim import WarmupCosineLR

BUDGET = 7.0


class Slow(Callback):
    """A slower machine: every training step takes ``seconds`` longer, from ``after`` seconds
    into training on (a machine that slows down midway)."""

    def __init__(self, seconds: float, after: float = 0.0) -> None:
        self.seconds, self.after = seconds, after
        self.began: float | None = None

    def on_train_start(self, *args: object) -> None:
        self.began = time.monotonic()

    def on_train_batch_end(self, *args: object) -> None:
        if time.monotonic() - self.began >= self.after:
            time.sleep(self.seconds)


@pytest.mark.parametrize(("text", "seconds"), [
    ("00:00:45:00", 2700), ("01:00:00", 3600), ("1:30", 90), (2700, 2700), ("7.5", 7.5),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "00:-1:00", 0, "", "1:2:3:4:5", True])
def test_parse_duration_refuses(text):
    with pytest.raises(ValueError, match="budget="):
        parse_duration(text)


def _simulated(batches: int, per_epoch: int, every: int, epochs: int | None) -> int:
    """Lightning's rule, batch by batch (training_epoch_loop._should_check_val_fx)."""
    count = 0
    for b in range(batches):
        epoch, idx = divmod(b, per_epoch)
        if epochs is None:
            count += (b + 1) % every == 0
        elif (epoch + 1) % epochs == 0:
            count += (idx + 1) % every == 0 or (idx + 1 == per_epoch and every >= per_epoch)
    return count


@pytest.mark.parametrize(("per_epoch", "every", "epochs"), [
    (19, 19, 1), (20, 10, 1), (20, 7, 1), (20, 10, 2), (20, 25, 1), (13, 5, None),
])
def test_validations_counted_as_lightning_schedules_them(per_epoch, every, epochs):
    for batches in (0, 1, 9, 10, 19, 20, 21, 55, 100):
        assert validations_in(batches, per_epoch, every, epochs) == \
            _simulated(batches, per_epoch, every, epochs), batches
    assert validations_in(50, math.inf, 10, 1) == 5  # no epochs: every 10 batches
    assert validations_in(50, 20, math.inf, 1) == 0  # no validation


def _budgeted_run(tmp_path, *overrides):
    cfg = compose_train(tmp_path, [*TINY, f"budget={BUDGET}", "model.scheduler.min_lr_ratio=0.1",
                                   "callbacks.throughput=null", *overrides])
    begin = time.monotonic()
    train(cfg)
    wall = time.monotonic() - begin
    plan = json.loads((tmp_path / "budget.json").read_text())
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    return wall, plan, metrics, last


def test_budget_sizes_the_schedule_on_a_fast_and_a_slow_machine(tmp_path, one_thread):
    fast = _budgeted_run(tmp_path / "fast")
    slow = _budgeted_run(tmp_path / "slow", "+callbacks.slow._target_=test_budget.Slow",
                         "+callbacks.slow.seconds=0.03")
    for wall, plan, metrics, last in (fast, slow):
        assert BUDGET - 2.5 < wall < BUDGET + 1.0, (wall, plan)  # ends at the budget, not before
        assert metrics["budget_seconds"] == BUDGET and metrics["wall_seconds"] <= BUDGET + 0.5
        assert not plan["stopped_early"]
        assert plan["steps_run"] == plan["total_steps"] == last["global_step"]  # validated last
        sched = last["lr_schedulers"][0]
        assert sched["total_steps"] == plan["total_steps"] == sched["last_epoch"]
        lr = sched["_last_lr"][0]
        assert lr == pytest.approx(0.1 * sched["base_lrs"][0])  # the cosine at its floor
        assert plan["plans"][0]["seconds_per_step"] > 0
    assert slow[1]["total_steps"] < fast[1]["total_steps"] / 1.5  # fewer steps, same budget


def test_budget_follows_a_machine_that_slows_down_midway(tmp_path, one_thread):
    """Steps take 3x longer from a third of the budget on: the validations after that re-plan
    from the recent step time, so the schedule still reaches its floor within the budget
    (a plan fixed at mid-run would have had to stop early, the cosine far from its floor)."""
    wall, plan, metrics, last = _budgeted_run(
        tmp_path, "+callbacks.slow._target_=test_budget.Slow", "+callbacks.slow.seconds=0.04",
        f"+callbacks.slow.after={BUDGET / 3}")
    assert BUDGET - 2.5 < wall < BUDGET + 1.0, (wall, plan)
    assert metrics["wall_seconds"] <= BUDGET + 0.5
    assert not plan["stopped_early"], plan
    assert plan["steps_run"] == plan["total_steps"] == last["global_step"]
    speeds = [p["seconds_per_step"] for p in plan["plans"]]
    assert max(speeds[1:]) > 2 * speeds[0], plan  # a later plan saw the slow-down
    sched = last["lr_schedulers"][0]
    assert sched["total_steps"] == plan["total_steps"] == sched["last_epoch"]
    assert sched["_last_lr"][0] == pytest.approx(0.1 * sched["base_lrs"][0])


def test_budget_plan_survives_a_resume():
    params = [torch.nn.Parameter(torch.zeros(1))]
    saved = TimeBudget(60)
    saved.total_steps, saved.plans = 1234, [{"total_steps": 1234}]
    state = saved.state_dict()
    assert state["spent"] >= 0
    resumed = TimeBudget(60)
    resumed.load_state_dict(state)
    sched = WarmupCosineLR(torch.optim.SGD(params, lr=1.0), total_steps=10**6, warmup_steps=100)
    triangle = SlantedTriangularLR(torch.optim.SGD(params, lr=1.0), total_steps=10**6)
    trainer = SimpleNamespace(lr_scheduler_configs=[SimpleNamespace(scheduler=sched),
                                                    SimpleNamespace(scheduler=triangle)])
    resumed.on_train_start(trainer, None)
    assert sched.total_steps == triangle.total_steps == 1234
    assert sched.warmup_steps == 100 and triangle.cut == 123
    assert resumed.deadline == pytest.approx(resumed.start + 60 - state["spent"])


def test_budget_refuses_a_scheduler_it_cannot_size():
    params = [torch.nn.Parameter(torch.zeros(1))]
    step = torch.optim.lr_scheduler.StepLR(torch.optim.SGD(params, lr=1.0), step_size=10)
    trainer = SimpleNamespace(lr_scheduler_configs=[SimpleNamespace(scheduler=step)])
    with pytest.raises(ValueError, match="StepLR cannot be sized by the budget"):
        TimeBudget(60).on_train_start(trainer, None)


def test_a_run_that_stops_at_max_steps_validates_its_last_step(tmp_path, one_thread):
    """19 batches an epoch, validation at the epoch's end: max_steps=7 stops before it."""
    train(compose_train(tmp_path, [*TINY, "trainer.max_steps=7", "callbacks.throughput=null"]))
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    best = torch.load(tmp_path / "checkpoints" / "best.ckpt", weights_only=True)
    assert last["global_step"] == best["global_step"] == 7
