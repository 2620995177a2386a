"""The translation task: sentence pairs to an attention seq2seq model."""

from __future__ import annotations

from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig
from rich.console import Console

from nlp_lstm.core.task import Task
from nlp_lstm.translation import endpoint, export
from nlp_lstm.translation.data import TranslationDataModule
from nlp_lstm.translation.module import Seq2SeqTranslator
from nlp_lstm.translation.runtime import OnnxTranslator


def tokenizers(model: Seq2SeqTranslator) -> dict[str, str]:
    """The model's tokenizers as data module arguments (a joint vocabulary is one)."""
    given = {"trained_tokenizer": model.tokenizer.to_json()}
    if model.target_tokenizer is not model.tokenizer:
        given["trained_target_tokenizer"] = model.target_tokenizer.to_json()
    return given


def prepare_eval(cfg: DictConfig, model: Seq2SeqTranslator) -> TranslationDataModule:
    for key in ("beam_size", "length_penalty", "max_length_ratio", "max_length_offset"):
        if cfg.get(key) is not None:
            setattr(model, key, cfg[key])
    model.check_decoding(model.beam_size, 1, model.max_length_ratio, model.max_length_offset)
    return instantiate(cfg.data, **tokenizers(model))


def signatures(metrics: dict[str, Any], model: Seq2SeqTranslator, console: Console) -> None:
    for key, value in metrics.items():
        if key.endswith("_signature"):
            console.print(f"sacreBLEU {key.split('/')[-1].removesuffix('_signature')} "
                          f"signature: {value}", highlight=False, soft_wrap=True)


TASK = Task(
    name="translation",
    datamodule=TranslationDataModule,
    models=(Seq2SeqTranslator,),
    model_inputs=lambda dm: {"tokenizer": dm.tokenizer.to_json(),
                             "target_tokenizer": None if dm.joint
                             else dm.target_tokenizer.to_json()},
    prepare_eval=prepare_eval,
    report=signatures,
    export=export.build,
    runtime=OnnxTranslator,
    endpoint=endpoint.ENDPOINT,
)
