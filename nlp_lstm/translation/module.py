"""The translation LightningModule: label-smoothed training of ``Seq2Seq``, validation loss,
perplexity and sacreBLEU BLEU/chrF of decoded output, and translation of raw text.

During fitting, validation decodes greedily (fast, for monitoring and checkpoint selection);
a standalone ``validate``/``test`` (the final evaluation of ``train.py``, the eval command)
decodes with beam search as configured (``beam_size``, ``length_penalty``, ...). BLEU and chrF
are sacreBLEU's (default 13a tokenizer, cased) on detokenized hypotheses against the raw
references, over the whole split (gathered across DDP ranks).

Legend: B batch, S source length, T target length, H hidden, V target vocabulary, N real
target tokens of a batch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torchmetrics import MeanMetric

from nlp_lstm.data.batching import pad_sequences
from nlp_lstm.data.tokenizer import Tokenizer
from nlp_lstm.inference import TranslatesText, check_decoding
from nlp_lstm.nn.decoding import Hypothesis, beam_search, greedy
from nlp_lstm.nn.masking import lengths_to_mask
from nlp_lstm.training.module import OptimizerFactory, SchedulerFactory, TaskModule
from nlp_lstm.translation.net import Seq2Seq, Seq2SeqState

NORMALIZATIONS = ("tokens", "sentences")


def corpus_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, Any]:
    """sacreBLEU BLEU and chrF (default settings: 13a tokenizer, cased) with their signatures."""
    from sacrebleu.metrics import BLEU, CHRF

    bleu, chrf = BLEU(), CHRF()
    return {"bleu": bleu.corpus_score(list(hypotheses), [list(references)]).score,
            "chrf": chrf.corpus_score(list(hypotheses), [list(references)]).score,
            "bleu_signature": str(bleu.get_signature()),
            "chrf_signature": str(chrf.get_signature())}


def _gather(items: list[Any]) -> list[Any]:
    """Every rank's items, rank by rank (the items themselves outside DDP)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return items
    parts: list[list[Any]] = [[] for _ in range(dist.get_world_size())]
    dist.all_gather_object(parts, items)
    return [item for part in parts for item in part]


class Seq2SeqTranslator(TranslatesText, TaskModule):
    """Attention seq2seq translation on the shared LSTM encoder.

    Args:
        tokenizer: the source (or joint) tokenizer as JSON; travels inside the checkpoint.
        target_tokenizer: the target tokenizer as JSON; None: the joint ``tokenizer``.
        embedding_dim, hidden_size, encoder, decoder_layers, attention, input_feeding, bridge,
            dropout, tie_embeddings, share_embeddings, init, param_init: those of ``Seq2Seq``
            (``encoder`` is the mapping of ``LSTMEncoder`` settings).
        label_smoothing: of the training cross-entropy (validation loss is the plain NLL).
        loss_normalization: the training loss is its sum over the batch's real target tokens
            divided by their number (``tokens``) or by the number of sentences
            (``sentences``, OpenNMT-py's default ``sents``: a gradient about the mean target
            length larger, which matters under gradient-norm clipping).
        max_length: sources longer than this are cut when translating raw text (and counted).
        beam_size: beam of the final evaluation, eval and translate (1: greedy).
        length_penalty: GNMT alpha of the beam search (0: none).
        max_length_ratio, max_length_offset: a hypothesis has at most ``a * S + b`` tokens.
        optimizer, scheduler: see ``TaskModule``.
    """

    task = "translation"

    def __init__(
        self,
        tokenizer: str,
        target_tokenizer: str | None = None,
        embedding_dim: int = 256,
        hidden_size: int = 512,
        encoder: Mapping[str, Any] | None = None,
        decoder_layers: int = 2,
        attention: str = "luong_general",
        input_feeding: bool = True,
        bridge: str = "project",
        dropout: float = 0.3,
        tie_embeddings: bool = False,
        share_embeddings: bool = False,
        init: str = "xavier",
        param_init: float | None = None,
        label_smoothing: float = 0.1,
        loss_normalization: str = "tokens",
        max_length: int = 128,
        beam_size: int = 5,
        length_penalty: float = 0.0,
        max_length_ratio: float = 1.5,
        max_length_offset: int = 10,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
    ) -> None:
        super().__init__(optimizer, scheduler)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"], logger=False)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        if loss_normalization not in NORMALIZATIONS:
            raise ValueError(f"loss_normalization must be one of {NORMALIZATIONS}, got "
                             f"{loss_normalization!r}")
        self.tokenizer = Tokenizer.from_json(tokenizer)
        self.target_tokenizer = (Tokenizer.from_json(target_tokenizer) if target_tokenizer
                                 else self.tokenizer)
        self.net = Seq2Seq(
            self.tokenizer.vocab_size, self.target_tokenizer.vocab_size,
            pad_id=self.tokenizer.pad_id, embedding_dim=embedding_dim, hidden_size=hidden_size,
            encoder=dict(encoder or {}), decoder_layers=decoder_layers, attention=attention,
            input_feeding=input_feeding, bridge=bridge, dropout=dropout,
            tie_embeddings=tie_embeddings, share_embeddings=share_embeddings, init=init,
            param_init=param_init)
        self.label_smoothing = label_smoothing
        self.loss_normalization = loss_normalization
        self.max_length = max_length
        self.beam_size, self.length_penalty = beam_size, length_penalty
        self.max_length_ratio, self.max_length_offset = max_length_ratio, max_length_offset
        self.check_decoding(beam_size, 1, max_length_ratio, max_length_offset)
        # torchmetrics sync the token-weighted loss across DDP ranks.
        self.losses = torch.nn.ModuleDict({stage: MeanMetric() for stage in ("val", "test")})
        self._decoded: list[tuple[int, str, str]] = []  # (index, hypothesis, reference)

    @property
    def final_eval_cost(self) -> float:
        """Validation decodes greedily while fitting, the final evaluation with the beam: about
        ``beam_size`` times the hypotheses per step."""
        return float(self.beam_size)

    # ------------------------------------------------------------- training
    def _real_logits(
        self, batch: dict[str, Any], state: Seq2SeqState | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (N, V) and gold tokens (N,) of the real target positions only: the output
        layer, the largest matmul, never sees padding. ``state``: the batch's sources already
        encoded (``Seq2Seq.encode``), else they are encoded here."""
        if state is None:
            state = self.net.encode(batch["src"], batch["src_lengths"])
        attentional = self.net.decoder.attentional(
            batch["tgt_in"], state.decoder, state.memory, state.mask, batch["tgt_lengths"]
        )  # (B, T, H)
        mask = lengths_to_mask(batch["tgt_lengths"].to(self.device),
                               batch["tgt_in"].size(1))  # (B, T)
        return self.net.decoder.logits(attentional[mask]), batch["tgt_out"][mask]  # (N, V), (N,)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        logits, gold = self._real_logits(batch)
        total = F.cross_entropy(logits.float(), gold, label_smoothing=self.label_smoothing,
                                reduction="sum")
        per_token = total / gold.numel()
        self.log("train/loss", per_token, prog_bar=True, batch_size=len(batch["src"]))
        return per_token if self.loss_normalization == "tokens" else total / len(batch["src"])

    # ----------------------------------------------------------- evaluation
    def _evaluate(self, batch: dict[str, Any], stage: str) -> None:
        state = self.net.encode(batch["src"], batch["src_lengths"])  # for the loss and decoding
        logits, gold = self._real_logits(batch, state)
        nll = F.cross_entropy(logits.float(), gold)  # per real token
        self.losses[stage].update(nll, weight=gold.numel())
        fitting = self.trainer is not None and self.trainer.state.fn == "fit"
        hypotheses = self.decode(batch["src"], batch["src_lengths"],
                                 beam_size=1 if fitting else self.beam_size, state=state)
        indices = batch["index"].tolist()
        for i, hyp, ref in zip(indices, hypotheses, batch["references"], strict=True):
            self._decoded.append((i, self.detokenize(hyp[0].tokens), ref))

    def _epoch_end(self, stage: str) -> None:
        loss = self.losses[stage].compute()
        self.losses[stage].reset()
        decoded = sorted(_gather(self._decoded))  # every example once, in data order
        self._decoded = []
        scores = corpus_scores([h for _, h, _ in decoded], [r for _, _, r in decoded])
        self.log_dict({f"{stage}/loss": loss, f"{stage}/ppl": math.exp(min(float(loss), 50.0)),
                       f"{stage}/bleu": scores["bleu"], f"{stage}/chrf": scores["chrf"]},
                      prog_bar=False)
        self.results = {"bleu_signature": scores["bleu_signature"],
                        "chrf_signature": scores["chrf_signature"]}
        self.outputs = [h for _, h, _ in decoded]

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._epoch_end("val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._epoch_end("test")

    # ------------------------------------------------------------- decoding
    #: A ValueError naming the first bad decoding setting (``nlp_lstm.inference``).
    check_decoding = staticmethod(check_decoding)

    @torch.no_grad()
    def decode(
        self, src: torch.Tensor, src_lengths: torch.Tensor, *, beam_size: int | None = None,
        n_best: int = 1, max_length_ratio: float | None = None,
        state: Seq2SeqState | None = None,
    ) -> list[list[Hypothesis]]:
        """Translate token ids: src (B, S), src_lengths (B,) -> per sentence its ``n_best``
        hypotheses (target ids without <bos>, score, attention (T, S)), best first. Greedy when
        the beam is 1. ``state``: the sources already encoded, else they are encoded here."""
        beam = self.beam_size if beam_size is None else beam_size
        ratio = self.max_length_ratio if max_length_ratio is None else max_length_ratio
        self.check_decoding(beam, n_best, ratio, self.max_length_offset)
        src, src_lengths = src.to(self.device), src_lengths.to(self.device)
        max_lengths = (ratio * src_lengths.double() + self.max_length_offset).long().clamp(min=1)
        if state is None:
            state = self.net.encode(src, src_lengths)
        ids = {"bos_id": self.target_tokenizer.bos_id, "eos_id": self.target_tokenizer.eos_id}
        if beam == 1 and n_best == 1:
            return [[h] for h in greedy(self.net.step, state, max_lengths=max_lengths,
                                         reorder=Seq2SeqState.select, **ids)]
        return beam_search(self.net.step, state, reorder=Seq2SeqState.select,
                           max_lengths=max_lengths, beam_size=beam, n_best=n_best,
                           length_penalty_alpha=self.length_penalty, **ids)

    @torch.no_grad()
    def _decode_ids(self, ids: list[list[int]], **settings: Any) -> list[list[Hypothesis]]:
        self.eval()
        src, src_lengths = pad_sequences(ids, self.tokenizer.pad_id)  # (B, S), (B,)
        return self.decode(src, src_lengths, **settings)

    def _attention(self, weights: torch.Tensor, length: int) -> torch.Tensor:
        return weights[:, :length].float().cpu()
