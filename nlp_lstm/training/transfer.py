"""Start a model from another model's weights: a pretrained language model's embedding and LSTM
layers into a classifier's encoder (ULMFiT, Howard & Ruder 2018; ELMo's biLM, Peters et al.
2018), or any checkpoint whose modules match.

Weights are matched by *canonical names*, the network's parameter names with one exception:
a language model's single-layer LSTMs ``layers.{k}.{w}_l0`` are layer k of a stacked encoder,
``encoder.{w}_l{k}``, with ``_reverse`` for a model that reads right to left. So a forward and a
backward language model fill the two directions of a bidirectional encoder, one to one; a
forward model alone fills the forward direction and the report says the backward one is new.

Two language models trained apart have two embeddings, and each one's LSTM reads its own. A
target embedding twice as wide takes both side by side, ``[forward | backward]``, and each
direction's first-layer input weights read their own half (zeros on the other half, which
fine-tuning may then learn): at the start the classifier's two directions compute exactly what
the two language models computed. A target as wide as one takes the forward model's, and the
report says the backward layers now read an embedding they were not trained with.

    spec = InitFrom(ckpt=["fwd.ckpt", "bwd.ckpt"], modules=["embedding", "encoder"])
    sources = read_sources(spec)          # checked, with their sha256
    report = init_from(model.net, spec, sources, tokenizer=model.tokenizer)
    print(report.table())

Every row of the report is a target tensor (``loaded``, ``new``: left as initialised) or a
source tensor with no place (``skipped``), with shapes. Nothing here reads a checkpoint after
training: a fine-tuned model's checkpoint holds all its weights, and ``provenance`` (the
sources' sha256, the modules) travels inside it as a record.

Vocabularies: by default the fine-tuning data adopts the pretrained tokenizer (``adopt``), and
settings that would split text differently are an error. With ``remap`` the data keeps its own
tokenizer and the embedding's rows are copied by token string, with the coverage reported.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nlp_lstm.data.tokenizer import Tokenizer, normalizer_settings
from nlp_lstm.training.checkpoint import CheckpointError, read_checkpoint

_LM_LAYER = re.compile(r"^layers\.(\d+)\.(\w+?)_l0(\w*)$")  # layers.{k}.{w}_l0{rest}


@dataclass(frozen=True)
class InitFrom:
    """The ``model.init_from`` node.

    Args:
        ckpt: one checkpoint path, or several whose tensors do not overlap (a forward and a
            backward language model).
        modules: the canonical top-level modules to load, e.g. ``[embedding, encoder]``.
        strict: a target tensor whose shape differs from its source is an error (else it is
            skipped, left as initialised, and reported).
        remap: keep the data's own tokenizer and copy embedding rows by token string.
    """

    ckpt: str | Sequence[str]
    modules: Sequence[str] = ("embedding", "encoder")
    strict: bool = True
    remap: bool = False

    @classmethod
    def parse(cls, node: Mapping[str, Any]) -> InitFrom:
        """From the config node, checked: a ValueError names what is wrong."""
        if not isinstance(node, Mapping):
            raise ValueError(f"model.init_from must be a mapping {{ckpt, modules, strict}}, got "
                             f"{node!r}")
        unknown = sorted(set(node) - {"ckpt", "modules", "strict", "remap"})
        if unknown:
            raise ValueError(f"model.init_from has unknown keys {unknown}; expected ckpt, "
                             "modules, strict, remap")
        if not node.get("ckpt"):
            raise ValueError("model.init_from.ckpt is required: a checkpoint path (or a list)")
        modules = node.get("modules", cls.modules)
        if isinstance(modules, str) or not modules:
            raise ValueError(f"model.init_from.modules must be a non-empty list of module "
                             f"names (e.g. [embedding, encoder]), got {modules!r}")
        return cls(ckpt=node["ckpt"], modules=tuple(modules),
                   strict=bool(node.get("strict", True)), remap=bool(node.get("remap", False)))

    @property
    def paths(self) -> list[Path]:
        ckpts = [self.ckpt] if isinstance(self.ckpt, str | Path) else list(self.ckpt)
        return [Path(p).expanduser() for p in ckpts]


@dataclass
class Source:
    """One checkpoint read for transfer: its canonical tensors and what it is."""

    path: Path
    sha256: str
    task: str
    model: str
    reverse: bool
    tensors: dict[str, torch.Tensor]
    tokenizer: Tokenizer | None

    @property
    def name(self) -> str:
        """The path's last three parts (run/checkpoints/best.ckpt), for the report."""
        return "/".join(self.path.parts[-3:])


def canonical_name(name: str, reverse: bool = False) -> str:
    """A network parameter's canonical name: a language model's layer k is layer k of a
    stacked encoder (its reverse direction for a model reading right to left)."""
    match = _LM_LAYER.match(name)
    if not match:
        return name
    k, weight, rest = match.groups()
    return f"encoder.{weight}_l{k}{'_reverse' if reverse else ''}{rest}"


def canonical_names(net: nn.Module, reverse: bool = False) -> dict[str, str]:
    """Canonical name -> the network's own parameter name, for every parameter (tied ones
    once, under their first name)."""
    return {canonical_name(name, reverse): name for name, _ in net.named_parameters()}


def read_source(path: Path) -> Source:
    """A checkpoint's canonical tensors; a CheckpointError for a missing, unreadable (corrupt or
    tampered) or foreign file, or one without network weights."""
    role = "model.init_from.ckpt"
    checkpoint = read_checkpoint(path, role)
    meta, state = checkpoint["nlp_lstm"], checkpoint.get("state_dict")
    if not isinstance(state, dict):
        raise CheckpointError(f"{role}: {path} is not an nlp-lstm checkpoint (no state_dict); "
                              "expected one written by `nlp-lstm train`")
    hparams = checkpoint.get("hyper_parameters") or {}
    reverse = bool(hparams.get("reverse", False))
    net_state = {k[len("net."):]: v for k, v in state.items() if k.startswith("net.")}
    if not net_state:
        raise CheckpointError(f"{role}: {path} ({meta.get('task')} task) has no network "
                              "weights to transfer")
    tensors = {canonical_name(name, reverse): tensor for name, tensor in net_state.items()}
    tokenizer = None
    if isinstance(hparams.get("tokenizer"), str):
        tokenizer = Tokenizer.from_json(hparams["tokenizer"])
    return Source(path, checkpoint["sha256"], str(meta.get("task")), str(meta.get("model")),
                  reverse, tensors, tokenizer)


def read_sources(spec: InitFrom) -> list[Source]:
    """Every checkpoint of the spec, checked to share one tokenizer and not to overlap."""
    sources = [read_source(p) for p in spec.paths]
    seen: dict[str, Path] = {}
    for source in sources:
        for name in source.tensors:
            shared = name == "embedding.weight" and len(sources) == 2 and (
                sources[0].reverse != sources[1].reverse)  # a forward and a backward model
            if name.split(".")[0] in spec.modules and name in seen and not shared:
                raise ValueError(f"model.init_from.ckpt: {source.path} and {seen[name]} both "
                                 f"hold {name}; list a forward and a backward model, not two "
                                 "of one direction")
            seen[name] = source.path
    tokenizers = {s.tokenizer.to_json() for s in sources if s.tokenizer is not None}
    if len(tokenizers) > 1:
        raise ValueError(f"model.init_from.ckpt: {[str(p) for p in spec.paths]} were trained "
                         "with different tokenizers; pretrain both directions on one")
    return sources


def adopt_tokenizer(sources: Sequence[Source], data_tokenizer: Tokenizer) -> str:
    """The pretrained tokenizer's JSON, for the fine-tuning data to use; a ValueError when the
    data's tokenizer settings (``data_tokenizer``, one trained by the data's recipe) would
    split or normalise text differently (set init_from.remap to keep the data's own)."""
    pretrained = next((s.tokenizer for s in sources if s.tokenizer is not None), None)
    if pretrained is None:
        raise ValueError(f"model.init_from.ckpt: {sources[0].path} carries no tokenizer to "
                         "adopt; set model.init_from.remap=false only for text models")
    ours, theirs = normalizer_settings(data_tokenizer), normalizer_settings(pretrained)
    differ = [k for k in ours if ours[k] != theirs[k]]
    if differ:
        detail = "; ".join(f"{k}: data {json.dumps(ours[k])} vs checkpoint "
                           f"{json.dumps(theirs[k])}" for k in differ)
        raise ValueError(f"the data's tokenizer settings differ from the pretrained "
                         f"tokenizer's ({detail}); set data.tokenizer to match (e.g. "
                         f"data.tokenizer.normalize=review), or model.init_from.remap=true to "
                         "map embeddings by token string")
    return pretrained.to_json()


@dataclass
class LoadReport:
    """What ``init_from`` did, one row per tensor: (canonical name, status, target shape,
    source shape, note); status is ``loaded``, ``new`` or ``skipped``."""

    rows: list[tuple[str, str, tuple[int, ...] | None, tuple[int, ...] | None, str]] = field(
        default_factory=list)
    notes: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)

    def count(self, status: str) -> int:
        return sum(1 for row in self.rows if row[1] == status)

    def table(self) -> str:
        width = max([len(r[0]) for r in self.rows] + [6])
        lines = [f"init_from: {self.count('loaded')} loaded, {self.count('new')} newly "
                 f"initialised, {self.count('skipped')} skipped"]
        for name, status, target, source, note in self.rows:
            shape = "x".join(map(str, target or source or ()))
            lines.append(f"  {status:<8} {name:<{width}} {shape:<12} {note}".rstrip())
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"rows": [{"name": n, "status": s, "shape": list(t) if t else None,
                          "source_shape": list(u) if u else None, "note": note}
                         for n, s, t, u, note in self.rows],
                "notes": self.notes, "provenance": self.provenance}


def _remapped_embedding(target: torch.Tensor, source: torch.Tensor, ours: Tokenizer,
                        theirs: Tokenizer) -> tuple[torch.Tensor, int]:
    """``target`` with the rows of tokens the source vocabulary also has copied from it."""
    vocab = theirs.backend.get_vocab()
    rows = target.clone()
    found = 0
    for token, i in ours.backend.get_vocab().items():
        j = vocab.get(token)
        if j is not None:
            rows[i] = source[j]
            found += 1
    return rows, found


def _stack_embeddings(available: dict[str, tuple[torch.Tensor, Source]],
                      second: tuple[torch.Tensor, Source], target: torch.Tensor,
                      report: LoadReport, origin: dict[str, str]) -> None:
    """A forward and a backward model's embeddings into ``available``: side by side when the
    target is as wide as both (each direction's layer-0 input weights padded with zeros to read
    its own half), else the forward one's (the other reported as skipped)."""
    first = available["embedding.weight"]
    (fwd, fwd_src), (bwd, bwd_src) = sorted([first, second], key=lambda t: t[1].reverse)
    if target.size(1) != fwd.size(1) + bwd.size(1):
        available["embedding.weight"] = (fwd, fwd_src)
        report.rows.append(("embedding.weight", "skipped", None, tuple(bwd.shape),
                            f"{bwd_src.name} (backward LM): the embedding is "
                            f"{fwd_src.name}'s"))
        report.notes.append(f"the backward layers now read the forward model's embedding, not "
                            f"the one they were trained with; an embedding_dim of "
                            f"{fwd.size(1) + bwd.size(1)} keeps both side by side")
        return
    Ef, Eb = fwd.size(1), bwd.size(1)
    available["embedding.weight"] = (torch.cat([fwd, bwd], dim=1), fwd_src)  # (V, Ef+Eb)
    origin["embedding.weight"] = (f"[{fwd_src.name} | {bwd_src.name}] side by side "
                                  f"({Ef} + {Eb})")
    for name, (lo, hi) in (("encoder.weight_ih_l0", (0, Eb)),
                           ("encoder.weight_ih_l0_reverse", (Ef, 0))):
        if name in available:
            w, src = available[name]  # (4H, E) -> (4H, Ef+Eb), zeros on the other half
            available[name] = (torch.cat([w.new_zeros(w.size(0), lo), w,
                                          w.new_zeros(w.size(0), hi)], dim=1), src)
            half = "first" if lo == 0 else "second"
            origin[name] = f"from {src.name}, reading the {half} half of the embedding"


@torch.no_grad()
def init_from(net: nn.Module, spec: InitFrom, sources: Sequence[Source],
              tokenizer: Tokenizer | None = None, reverse: bool = False) -> LoadReport:
    """Copy the spec's modules from ``sources`` into ``net`` (in place) and report.

    Args:
        net: the target network (a task module's ``net``).
        spec: what to load.
        sources: ``read_sources(spec)``.
        tokenizer: the target model's tokenizer, needed with ``spec.remap``.
        reverse: the target reads right to left (a backward language model).

    Raises:
        ValueError: nothing matched; a shape differs under ``strict``; remap without tokenizers.
    """
    names = canonical_names(net, reverse)
    params = dict(net.named_parameters())
    available: dict[str, tuple[torch.Tensor, Source]] = {}
    second_embedding = None
    for source in sources:
        for k, v in source.tensors.items():
            if k.split(".")[0] not in spec.modules:
                continue
            if k in available:  # only the embedding of a forward and a backward model
                second_embedding = (v, source)
            else:
                available[k] = (v, source)
    report = LoadReport()
    origin: dict[str, str] = {}  # canonical name -> where a stacked tensor came from
    if second_embedding is not None and "embedding.weight" in names:
        _stack_embeddings(available, second_embedding, params[names["embedding.weight"]],
                          report, origin)
    for canonical, own in names.items():
        if canonical.split(".")[0] not in spec.modules:
            continue
        param = params[own]
        shape = tuple(param.shape)
        if canonical not in available:
            report.rows.append((canonical, "new", shape, None, "not in the source"))
            continue
        tensor, source = available.pop(canonical)
        if spec.remap and canonical == "embedding.weight":
            if tokenizer is None or source.tokenizer is None:
                raise ValueError("model.init_from.remap needs the tokenizers of both models")
            if tensor.size(1) != param.size(1):
                raise ValueError(f"model.init_from: embedding.weight has width {param.size(1)}, "
                                 f"the source's {tensor.size(1)}; expected equal widths")
            rows, found = _remapped_embedding(param.data, tensor, tokenizer, source.tokenizer)
            param.copy_(rows)
            share = found / max(tokenizer.vocab_size, 1)
            report.rows.append((canonical, "loaded", shape, tuple(tensor.shape),
                                f"remapped by token string: {found} of {tokenizer.vocab_size} "
                                f"rows ({share:.1%})"))
            report.notes.append(f"remap coverage: {found}/{tokenizer.vocab_size} target tokens "
                                f"({share:.1%}) found in the source vocabulary; the rest keep "
                                "their initialisation")
            continue
        if tuple(tensor.shape) != shape:
            if spec.strict:
                raise ValueError(f"model.init_from: {canonical} has shape {list(shape)} here and "
                                 f"{list(tensor.shape)} in {source.path}; expected equal shapes "
                                 "(or set model.init_from.strict=false to skip it)")
            report.rows.append((canonical, "skipped", shape, tuple(tensor.shape),
                                f"shape differs from the source's {list(tensor.shape)}; kept "
                                "as initialised"))
            continue
        param.copy_(tensor)
        direction = " (backward LM)" if source.reverse else ""
        report.rows.append((canonical, "loaded", shape, tuple(tensor.shape),
                            origin.get(canonical, f"from {source.name}{direction}")))
    for canonical, (tensor, source) in available.items():
        report.rows.append((canonical, "skipped", None, tuple(tensor.shape),
                            f"in {source.name} but not in this model"))
    if not report.count("loaded"):
        have = sorted({k.split(".")[0] for s in sources for k in s.tensors})
        raise ValueError(f"model.init_from: nothing in {[str(s.path) for s in sources]} matches "
                         f"modules {list(spec.modules)} of this model; the checkpoint has "
                         f"{have}")
    forward = [r for r in report.rows if r[0].startswith("encoder.") and "_reverse" not in r[0]]
    backward = [r for r in report.rows if r[0].startswith("encoder.") and "_reverse" in r[0]]
    for side, filled, other, empty in (("forward", forward, "backward", backward),
                                       ("backward", backward, "forward", forward)):
        if (filled and empty and all(r[1] == "loaded" for r in filled)
                and all(r[1] == "new" for r in empty)):
            report.notes.append(f"a {side} language model filled the {side} direction only; "
                                f"the {other} direction is newly initialised")
    report.provenance = {
        "sources": [{"path": str(s.path), "sha256": s.sha256, "task": s.task, "model": s.model,
                     "reverse": s.reverse} for s in sources],
        "modules": list(spec.modules), "strict": spec.strict, "remap": spec.remap,
        "loaded": report.count("loaded"), "new": report.count("new"),
        "skipped": report.count("skipped"),
    }
    return report
