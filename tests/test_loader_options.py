"""``data.loader``: one node of batching options that every task's data module takes."""

from __future__ import annotations

import importlib
import inspect
import os
import subprocess
import sys
from dataclasses import fields

import pytest
from conftest import ROOT, compose_train
from hydra.utils import instantiate
from omegaconf import OmegaConf

from nlp_lstm.data.base import DataModule
from nlp_lstm.data.loader import LoaderOptions, nest_loader_options

TASK_DATA = {"sentiment": "sentiment_synthetic", "translation": "translation_synthetic",
             "generation": "generation_synthetic", "forecasting": "forecast_synthetic"}
OPTIONS = {f.name for f in fields(LoaderOptions)}


def _subclasses(cls: type) -> list[type]:
    return [c for sub in cls.__subclasses__() for c in (sub, *_subclasses(sub))]


def test_every_data_module_takes_one_loader_node_and_no_loose_option():
    for task in TASK_DATA:
        importlib.import_module(f"nlp_lstm.{task}.data")
    importlib.import_module("nlp_lstm.sentiment.transfer_set")
    modules = [c for c in _subclasses(DataModule) if c.__module__.startswith("nlp_lstm.")]
    assert {c.task for c in modules if c.task} == set(TASK_DATA)
    for cls in modules:
        parameters = inspect.signature(cls.__init__).parameters
        assert "loader" in parameters, cls
        assert not OPTIONS & set(parameters), (cls, OPTIONS & set(parameters))


@pytest.mark.parametrize("task", list(TASK_DATA))
def test_the_config_node_reaches_every_task(task, tmp_path):
    data = TASK_DATA[task]
    cfg = compose_train(tmp_path, [f"task={task}", f"data={data}", "data.loader.batch_size=7",
                                   "data.loader.seed=11", "data.loader.num_workers=0"])
    dm = instantiate(cfg.data)
    assert isinstance(dm.options, LoaderOptions)
    assert (dm.options.batch_size, dm.options.seed) == (7, 11)
    expected = OmegaConf.to_container(cfg.data.loader, resolve=True)
    expected.pop("_target_")
    assert {k: getattr(dm.options, k) for k in expected} == expected


@pytest.mark.parametrize(("task", "extra"), [
    ("translation", []), ("generation", ["data.mode=sentences"]), ("sentiment", []),
])
def test_train_examples_and_truncation_reach_translation_and_generation(task, extra, tmp_path):
    """Before the node, translation and generation silently lacked these two options."""
    cfg = compose_train(tmp_path, [f"task={task}", f"data={TASK_DATA[task]}", *extra,
                                   "data.loader.train_examples=40", "data.loader.max_length=8",
                                   "data.loader.truncation=head_tail",
                                   f"data.cache_dir={tmp_path / 'cache'}"])
    dm = instantiate(cfg.data)
    assert len(dm._examples("train")) == 40
    assert (dm.guard.head, dm.guard.tail) == (2, 6)  # a quarter, then the rest from the end
    assert dm.fitted_cache("x").name.endswith("-subset40.json")  # fitted on the subset only


@pytest.mark.parametrize(("changes", "message"), [
    ({"batch_size": 0}, "data.loader.batch_size must be a positive integer, got 0"),
    ({"batch_size": None, "max_tokens": None}, "give data.loader.batch_size, data.loader.max"),
    ({"max_tokens": -5}, "data.loader.max_tokens must be a positive integer, got -5"),
    ({"max_length": 0}, "data.loader.max_length must be a positive integer, got 0"),
    ({"truncation": "tail"}, "data.loader.truncation must be one of ('head', 'head_tail'), "
                             "got 'tail'"),
    ({"on_error": "ignore"}, "data.loader.on_error must be one of ('raise', 'skip'), got "
                             "'ignore'"),
    ({"num_workers": -1}, "data.loader.num_workers must be an integer >= 0, got -1"),
    ({"train_examples": 0}, "data.loader.train_examples must be a positive integer or null, "
                            "got 0"),
])
def test_a_bad_option_names_itself_and_what_was_expected(changes, message):
    with pytest.raises(ValueError) as e:
        LoaderOptions(**changes)
    assert str(e.value) == message or str(e.value).startswith(message)


def test_a_mapping_works_and_an_unknown_key_is_named():
    options = LoaderOptions.of({"batch_size": 8, "max_length": 32})
    assert options == LoaderOptions(batch_size=8, max_length=32)
    assert LoaderOptions.of(None, LoaderOptions(batch_size=32)).batch_size == 32
    with pytest.raises(ValueError, match=r"unknown data.loader option\(s\) \['batch'\]"):
        LoaderOptions.of({"batch": 8})
    with pytest.raises(TypeError, match="got int"):
        LoaderOptions.of(8)


def test_each_task_keeps_its_own_defaults_without_a_node():
    from nlp_lstm.forecasting.data import ForecastDataModule, SyntheticSeries
    from nlp_lstm.translation.corpus import SyntheticTranslation
    from nlp_lstm.translation.data import TranslationDataModule

    assert TranslationDataModule(SyntheticTranslation(10)).options.max_length == 128
    assert ForecastDataModule(SyntheticSeries(200)).options.batch_size == 32


def test_the_command_line_stops_on_a_bad_option_with_exit_2(tmp_path):
    proc = subprocess.run(
        [sys.executable, "train.py", "data.loader.batch_size=0", f"hydra.run.dir={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "NLP_LSTM_DEBUG": ""},
    )
    assert proc.returncode == 2, proc.stderr
    assert "data.loader.batch_size must be a positive integer, got 0" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_earlier_flat_data_config_is_nested():
    """Checkpoints of 0.3.0's first builds recorded data.batch_size at the top of the node."""
    flat = {"_target_": "nlp_lstm.sentiment.SentimentDataModule", "source": {"x": 1},
            "batch_size": 32, "max_length": 128, "seed": "${seed}"}
    nested = nest_loader_options(flat)
    assert nested == {"_target_": "nlp_lstm.sentiment.SentimentDataModule", "source": {"x": 1},
                      "loader": {"_target_": "nlp_lstm.data.LoaderOptions", "batch_size": 32,
                                 "max_length": 128, "seed": "${seed}"}}
    assert nest_loader_options(nested) == nested
    assert flat["batch_size"] == 32  # the input is left alone

