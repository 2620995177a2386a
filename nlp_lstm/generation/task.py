"""The generation task: text streams to an LSTM language model."""

from __future__ import annotations

from hydra.utils import instantiate

from nlp_lstm.core.task import Task
from nlp_lstm.generation import endpoint, export
from nlp_lstm.generation.data import GenerationDataModule
from nlp_lstm.generation.module import LanguageModel
from nlp_lstm.generation.runtime import OnnxLanguageModel

TASK = Task(
    name="generation",
    datamodule=GenerationDataModule,
    models=(LanguageModel,),
    model_inputs=lambda dm: {"tokenizer": dm.tokenizer.to_json(), "separator": dm.separator,
                             "reverse": dm.reverse},
    prepare_eval=lambda cfg, model: instantiate(cfg.data,
                                                trained_tokenizer=model.tokenizer.to_json()),
    export=export.build,
    runtime=OnnxLanguageModel,
    endpoint=endpoint.ENDPOINT,
)
