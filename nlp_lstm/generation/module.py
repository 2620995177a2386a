"""The generation LightningModule: truncated-BPTT training of ``LanguageModelNet`` on contiguous
streams, perplexity and bits per character, the long-range probe, and sampling from raw text.

Stream mode carries the network's state (the (h, c) of every layer and, with attention, the
memory of past top-layer states) from each batch to the next, detached, as the data module's
contiguous streams intend; the carried state starts empty at the start of every training,
validation and test epoch, and each DDP rank carries its own (it reads its own streams).
Sentence batches (``lengths`` present) start every example from an empty state. A Transformer
language model carries nothing (``LanguageModelNet.carries_state``): each batch is read on its
own, with causal attention within it.

Metrics of a split, over all its batches (and ranks):

- ``loss``: nats per predicted token, ``ppl`` = exp(loss);
- ``bpc``: bits per character, total nats / the characters the predicted tokens stand for /
  ln 2 (the batches' ``characters``), so character and BPE models compare;
- ``probe`` (where the data marks probe tokens, e.g. the story corpus): the teacher-forced
  accuracy of the argmax prediction on those tokens.

Legend: B batch, T time, V vocab, P prompt length, N generated tokens.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torchmetrics import SumMetric

from nlp_lstm.data.tokenizer import Tokenizer
from nlp_lstm.generation.net import LanguageModelNet, LMState
from nlp_lstm.inference import GeneratesText, encode_prompt, pieces
from nlp_lstm.nn.sampling import iter_sample
from nlp_lstm.text_stream import TextStream
from nlp_lstm.training.module import OptimizerFactory, SchedulerFactory, TaskModule

SUMS = ("nats", "tokens", "characters", "probe_correct", "probe_total")


class LanguageModel(GeneratesText, TaskModule):
    """An LSTM language model with optional window attention over its past, or a causal
    Transformer one (``LanguageModelNet``).

    Args:
        tokenizer: the trained tokenizer as JSON; travels inside the checkpoint.
        separator: the text between documents of the training data (e.g. a newline); an empty
            prompt starts from it.
        embedding_dim, encoder, attention, attention_window, dropout_embedding, dropout_input,
            dropout_hidden, dropout_output, tie_embeddings: those of ``LanguageModelNet``
            (``encoder`` is the mapping of ``LSTMEncoder`` settings, ``hidden_size`` required,
            or ``kind: transformer`` and ``TransformerEncoder`` settings).
        max_length: a prompt longer than this many tokens keeps its last ``max_length`` (the
            prompt is read in one forward call, whose memory grows with its length); a
            Transformer's prompt keeps at most its context, ``encoder.max_length``.
        adaptive_cutoffs: an adaptive softmax's cluster boundaries (``LanguageModelNet``).
        embedding_init_std: the embedding's initial N(0, std) (``LanguageModelNet``).
        reverse: the model reads its text right to left (the data module's ``reverse``): the
            backward half of a biLM, whose layers fill the backward direction of a
            bidirectional encoder (``nlp_lstm.training.transfer``). It cannot generate.
        optimizer, scheduler: see ``TaskModule``.
        init_from: where the weights start from (``nlp_lstm.training.transfer``; e.g. a pretrained
            language model fine-tuned on the target task's text). Applied by the train command
            before fitting and kept as a record: loading a checkpoint never reads it again.
    """

    task = "generation"

    def __init__(
        self,
        tokenizer: str,
        separator: str = "\n",
        embedding_dim: int = 128,
        encoder: Mapping[str, Any] | None = None,
        attention: str = "none",
        attention_window: int = 64,
        dropout_embedding: float = 0.0,
        dropout_input: float = 0.0,
        dropout_hidden: float = 0.0,
        dropout_output: float = 0.0,
        tie_embeddings: bool = True,
        max_length: int = 4096,
        adaptive_cutoffs: list[int] | None = None,
        embedding_init_std: float = 1.0,
        reverse: bool = False,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        init_from: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(optimizer, scheduler)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"], logger=False)
        self.reverse = reverse
        if not isinstance(max_length, int) or max_length < 1:
            raise ValueError(f"max_length must be a positive integer, got {max_length!r}")
        self.tokenizer = Tokenizer.from_json(tokenizer)
        self.separator = separator
        self.max_length = max_length
        self.net = LanguageModelNet(
            self.tokenizer.vocab_size, embedding_dim=embedding_dim,
            encoder=dict(encoder or {"hidden_size": 512, "num_layers": 2}),
            pad_id=self.tokenizer.pad_id, attention=attention, attention_window=attention_window,
            dropout_embedding=dropout_embedding, dropout_input=dropout_input,
            dropout_hidden=dropout_hidden, dropout_output=dropout_output,
            tie_embeddings=tie_embeddings, adaptive_cutoffs=adaptive_cutoffs,
            embedding_init_std=embedding_init_std)
        # Sums synced across DDP ranks by torchmetrics: the metrics are those of the whole split.
        self.sums = torch.nn.ModuleDict({f"{stage}_{name}": SumMetric()
                                         for stage in ("val", "test") for name in SUMS})
        self._states: dict[str, LMState] = {}  # per stage, the state the next batch starts from

    # -------------------------------------------------------------- the state
    def _forward(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        """Features (B, T, O) of a batch for ``net.output``/``net.target_log_probs``; stream
        batches continue the stage's carried state."""
        carry = batch.get("lengths") is None and self.net.carries_state
        lengths = batch.get("lengths")
        state = None
        if carry:
            state = self._states.get(stage)
            if state is not None and state.h.size(1) != batch["input"].size(0):
                state = None  # a different number of streams: a new text
        x, new_state = self.net.features(batch["input"], state, lengths)  # (B, T, O)
        if carry:  # truncated BPTT: carry the values, cut the graph
            self._states[stage] = new_state.detach()
        return x

    def on_train_epoch_start(self) -> None:
        self._states.pop("train", None)

    def on_validation_epoch_start(self) -> None:
        self._states.pop("val", None)

    def on_test_epoch_start(self) -> None:
        self._states.pop("test", None)

    # -------------------------------------------------------------- training
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x = self._forward(batch, "train")  # (B, T, O)
        target = batch["target"]  # (B, T)
        if self.net.adaptive:
            real = target != self.tokenizer.pad_id  # (B, T)
            loss = -(self.net.target_log_probs(x, target) * real).sum() / real.sum().clamp(min=1)
        else:
            loss = F.cross_entropy(self.net.output(x).flatten(0, 1), target.flatten(),
                                   ignore_index=self.tokenizer.pad_id)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["target"].size(0))
        return loss

    def _evaluate(self, batch: dict[str, torch.Tensor], stage: str) -> None:
        x = self._forward(batch, stage)  # (B, T, O)
        target = batch["target"]  # (B, T)
        real = target != self.tokenizer.pad_id  # (B, T)
        if self.net.adaptive:  # the target's probability only, not all V
            nats = -(self.net.target_log_probs(x, target) * real).sum()
            logits = None
        else:
            logits = self.net.output(x)  # (B, T, V)
            nats = F.cross_entropy(logits.flatten(0, 1).float(), target.flatten(),
                                   ignore_index=self.tokenizer.pad_id, reduction="sum")
        sums = {"nats": nats, "tokens": real.sum(), "characters": batch["characters"]}
        if "probe" in batch and logits is not None:
            probe = batch["probe"]  # (B, T)
            sums["probe_correct"] = ((logits.argmax(-1) == target) & probe).sum()
            sums["probe_total"] = probe.sum()
        for name, value in sums.items():
            self.sums[f"{stage}_{name}"].update(value.float())

    def _log_epoch(self, stage: str) -> None:
        total = {}
        for name in SUMS:
            metric = self.sums[f"{stage}_{name}"]
            total[name] = float(metric.compute()) if metric.update_count else 0.0
            metric.reset()
        if not total["tokens"]:
            return
        loss = total["nats"] / total["tokens"]
        self.log(f"{stage}/loss", loss, prog_bar=True)
        self.log(f"{stage}/ppl", math.exp(min(loss, 50.0)))
        self.log(f"{stage}/bpc", total["nats"] / max(total["characters"], 1.0) / math.log(2))
        if total["probe_total"]:
            self.log(f"{stage}/probe", total["probe_correct"] / total["probe_total"],
                     prog_bar=True)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    # ------------------------------------------------------------ generation
    def encode_prompt(self, prompt: str) -> tuple[list[int], int]:
        """The prompt's ids (the separator's if the prompt is empty), its last ``max_length``
        kept (a Transformer's context, if shorter), and how many tokens were cut
        (``nlp_lstm.inference.encode_prompt``)."""
        if self.reverse:
            raise ValueError("this language model reads its text right to left (reverse=True), "
                             "the backward half of a biLM: it scores and transfers, but "
                             "generation needs a forward model")
        limit = self.max_length if self.net.context is None else min(self.max_length,
                                                                      self.net.context)
        return encode_prompt(self.tokenizer, prompt, self.separator, limit)

    @torch.no_grad()
    def _pieces(self, ids: list[int], streams: list[TextStream],
                settings: dict[str, Any]) -> Iterator[list[str]]:
        self.eval()
        seed = settings.pop("seed")
        n = len(streams)
        prompt_ids = torch.tensor([ids], device=self.device)  # (1, P)
        logits, state = self.net.prompt(prompt_ids)  # (1, V)
        state = state.repeat_interleave(n)  # the prompt read once, continued n times
        logits = logits.repeat_interleave(n, dim=0)  # (n, V)
        generator = None
        if seed is not None:
            generator = torch.Generator(device=self.device).manual_seed(seed)
        steps = iter_sample(self.net.step, state, logits, prompt_ids=prompt_ids.expand(n, -1),
                            eos_id=self.tokenizer.eos_id, pad_id=self.tokenizer.pad_id,
                            generator=generator, **settings)
        yield from pieces(streams, (tokens.tolist() for tokens in steps))  # tokens (n,)
