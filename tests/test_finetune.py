"""ULMFiT's fine-tuning knobs (nlp_lstm.training.finetune): layer groups, discriminative learning
rates, gradual unfreezing and the slanted triangular schedule, on a tiny sentiment network."""

from __future__ import annotations

from itertools import pairwise

import pytest
import torch

from nlp_lstm.sentiment.net import LSTMClassifierNet
from nlp_lstm.training.finetune import (
    SlantedTriangularLR,
    discriminative_groups,
    freeze_groups,
    layer_groups,
    unfrozen_groups,
)


def network() -> torch.nn.Module:
    torch.manual_seed(0)
    return LSTMClassifierNet(50, 2, 0, 8, {"hidden_size": 6, "num_layers": 2,
                                           "bidirectional": True}, "last", 0.0)


def test_groups_run_from_the_embedding_to_the_head() -> None:
    groups = [[name for name, _ in g] for g in layer_groups(network())]
    assert len(groups) == 4  # embedding, encoder layer 0, layer 1, pooling and head
    assert groups[0] == ["embedding.weight"]
    assert all("_l0" in n for n in groups[1]) and any("_reverse" in n for n in groups[1])
    assert all("_l1" in n for n in groups[2])
    assert "head.weight" in groups[3]


def test_discriminative_learning_rates_per_layer() -> None:
    net = network()
    groups = discriminative_groups(net, 0.01, 2.6)
    assert [g["lr"] for g in groups] == pytest.approx([0.01 / 2.6**3, 0.01 / 2.6**2,
                                                       0.01 / 2.6, 0.01])
    optimizer = torch.optim.Adam(groups)
    assert [g["lr"] for g in optimizer.param_groups] == [g["lr"] for g in groups]
    assert sum(len(g["params"]) for g in groups) == len(list(net.parameters()))
    assert {g["lr"] for g in discriminative_groups(net, 0.01, 1.0)} == {0.01}
    with pytest.raises(ValueError, match="layer_lr_decay >= 1"):
        discriminative_groups(net, 0.01, 0.5)


def test_frozen_groups_stay_put_until_their_unfreeze_step() -> None:
    net = network()
    optimizer = torch.optim.Adam(discriminative_groups(net, 0.01), lr=0.01)
    tokens, lengths = torch.randint(1, 50, (4, 7)), torch.tensor([7, 5, 3, 2])
    labels = torch.tensor([0, 1, 0, 1])
    every, count = 2, len(layer_groups(net))
    embedding = net.embedding.weight
    for step in range(every * count):
        trainable = unfrozen_groups(step, count, every)
        freeze_groups(net, trainable)
        before = embedding.detach().clone()
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(tokens, lengths), labels).backward()
        optimizer.step()
        moved = not torch.equal(before, embedding.detach())
        assert moved == (trainable == count), (step, trainable)  # the bottom group thaws last
    assert unfrozen_groups(0, 4, None) == 4 and unfrozen_groups(5, 4, 2) == 3
    with pytest.raises(ValueError, match="positive number of steps"):
        unfrozen_groups(0, 4, 0)


def test_slanted_triangular_schedule() -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01)
    schedule = SlantedTriangularLR(optimizer, total_steps=100, cut_frac=0.1, ratio=32)
    rates = []
    for _ in range(100):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates[0] == pytest.approx(0.01 / 32)  # starts at 1/ratio of the peak
    assert max(rates) == pytest.approx(0.01) and rates.index(max(rates)) == 10  # peak at cut
    assert all(a < b for a, b in pairwise(rates[:11]))  # up
    assert all(a > b for a, b in pairwise(rates[10:]))  # then down
    assert schedule.factor(100) == pytest.approx(1 / 32)
    with pytest.raises(ValueError, match="cut_frac in"):
        SlantedTriangularLR(optimizer, total_steps=10, cut_frac=1.5)


def test_the_knobs_are_wired_into_training(tmp_path) -> None:
    """layer_lr_decay reaches the optimizer of a sentiment model; the callback freezes and
    thaws the groups by the trainer's step."""
    from types import SimpleNamespace

    from conftest import compose_train
    from hydra.utils import instantiate

    from nlp_lstm.drivers.registry import get_task
    from nlp_lstm.training.callbacks import GradualUnfreezing

    cfg = compose_train(tmp_path, ["task=sentiment", "model.layer_lr_decay=2.6",
                                   "model.optimizer.lr=0.01",
                                   "model.encoder.num_layers=2"])
    dm = instantiate(cfg.data)
    dm.prepare_data()
    dm.setup("fit")
    model = instantiate(cfg.model, **get_task("sentiment").model_inputs(dm), _convert_="all")
    rates = [g["lr"] for g in model.optimizer_factory(model.parameter_groups()).param_groups]
    assert rates == pytest.approx([0.01 / 2.6**3, 0.01 / 2.6**2, 0.01 / 2.6, 0.01])

    callback = GradualUnfreezing(every_steps=3)
    for step, trainable in ((0, 1), (2, 1), (3, 2), (9, 4), (50, 4)):
        callback.on_train_batch_start(SimpleNamespace(global_step=step), model, None, 0)
        frozen = [not p.requires_grad for _, p in
                  (pair for g in layer_groups(model.net) for pair in g)]
        assert sum(not f for f in frozen) == sum(
            len(g) for g in layer_groups(model.net)[len(layer_groups(model.net)) - trainable:])
    callback.on_train_batch_start(SimpleNamespace(global_step=0), model, None, 0)
    callback.on_fit_end(None, model)
    assert all(p.requires_grad for p in model.net.parameters())
    with pytest.raises(ValueError, match="positive number of steps"):
        GradualUnfreezing(every_steps=0)
