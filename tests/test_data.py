"""Corpus, tokenizer, batching, fitted state, the generic data module base and the sentiment
data module."""

from __future__ import annotations

import collections
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from nlp_lstm.data import DataModule, Tokenizer, TokenizerTrainer
from nlp_lstm.data.base import ToFit
from nlp_lstm.data.batching import LengthGuard, pad_sequences
from nlp_lstm.data.loader import LoaderOptions
from nlp_lstm.data.tokenizer import SPECIALS
from nlp_lstm.evaluation.stats import _print
from nlp_lstm.fitted import Fitted, load_fitted, save_fitted
from nlp_lstm.sentiment import SentimentDataModule, SyntheticSentiment
from nlp_lstm.sentiment.corpus import NEGATIVE, POSITIVE, generate_sentiment
from nlp_lstm.sentiment.data import ClassificationCollate


def test_corpus_is_deterministic_and_seeded():
    assert generate_sentiment(300, seed=3) == generate_sentiment(300, seed=3)
    assert generate_sentiment(300, seed=3) != generate_sentiment(300, seed=4)


def test_corpus_splits_are_disjoint_and_sized():
    source = SyntheticSentiment(num_examples=1000, seed=0)
    splits = {s: source.load(s)[0] for s in source.splits}
    assert [len(splits[s]) for s in ("train", "val", "test")] == [800, 100, 100]
    texts = [{t.lower() for t, _ in rows} for rows in splits.values()]
    assert not (texts[0] & texts[1]) and not (texts[0] & texts[2]) and not (texts[1] & texts[2])
    labels = collections.Counter(label for rows in splits.values() for _, label in rows)
    assert abs(labels[0] - labels[1]) < 100  # balanced


def test_contrast_labels_are_invisible_to_a_bag_of_words():
    """In contrasts every adjective is as likely under either label: only order tells."""
    examples = [e for e in generate_sentiment(8000, seed=0) if e.template in ("but", "arc")]
    counts = collections.defaultdict(lambda: [0, 0])
    for e in examples:
        for word in set(e.text.lower().strip(".!").replace(",", "").split()):
            counts[word][e.label] += 1
    for adjective in POSITIVE + NEGATIVE:
        neg, pos = counts[adjective]
        assert 0.4 < pos / (pos + neg) < 0.6, (adjective, neg, pos)


def _clause_polarity(clause: str) -> int:
    words = clause.split()
    adjectives = [w for w in words if w in POSITIVE or w in NEGATIVE]
    assert len(adjectives) == 1, clause
    negated = any(w in ("not", "never", "hardly") for w in words)
    return int((adjectives[0] in POSITIVE) != negated)


def _oracle(text: str) -> int:
    """The label, re-derived from the text alone by the grammar's rules."""
    t = text.lower().rstrip(".!")
    for opener in ("honestly, ", "overall, ", "i think ", "in my opinion, ", "frankly, "):
        t = t.removeprefix(opener)
    if " at first, but " in t:
        return _clause_polarity(t.split(" at first, but ")[1])
    if ", but " in t:
        return _clause_polarity(t.split(", but ")[1])
    if t.startswith("although "):
        return _clause_polarity(t.split(", ", 1)[1])
    if ", although " in t:
        return _clause_polarity(t.split(", although ")[0])
    if " and " in t:
        first, second = t.split(" and ")
        assert _clause_polarity(first) == _clause_polarity(second)
    return _clause_polarity(t.split(" and ")[0])


def test_corpus_labels_follow_the_grammar():
    examples = generate_sentiment(3000, seed=5)
    assert {e.template for e in examples} == {"plain", "and", "but", "arc", "although"}
    for e in examples:
        assert _oracle(e.text) == e.label, e


def test_tokenizer_round_trip_and_specials():
    tok = Tokenizer.train_word_level(["The film was GOOD.", "not good, not bad!"])
    assert [tok.backend.id_to_token(i) for i in range(4)] == list(SPECIALS)
    assert (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id) == (0, 1, 2, 3)
    assert tok.tokenize("Not GOOD, film!") == ["not", "good", ",", "film", "!"]
    ids = tok.encode("not good, the film was bad!")
    assert tok.decode(ids) == "not good, the film was bad!"
    assert tok.encode("zebra", bos=True, eos=True) == [2, tok.unk_id, 3]
    again = Tokenizer.from_json(tok.to_json())
    assert again.encode("the film was good") == tok.encode("the film was good")


def test_tokenizer_min_freq_and_max_vocab():
    texts = ["a a a b b c"]
    assert Tokenizer.train_word_level(texts, min_freq=2).tokenize("a b c") == ["a", "b", "<unk>"]
    assert Tokenizer.train_word_level(texts, max_vocab=5).vocab_size == 5
    with pytest.raises(ValueError, match="max_vocab"):
        Tokenizer.train_word_level(texts, max_vocab=4)


def test_tokenizer_rejects_a_foreign_vocabulary():
    tok = Tokenizer.train_word_level(["hello"])
    data = tok.to_json().replace('"<pad>"', '"<PAD>"')
    with pytest.raises(ValueError, match="<pad>"):
        Tokenizer.from_json(data)


def test_pad_sequences_and_collate():
    tokens, lengths = pad_sequences([[5, 6, 7], [8]], pad_value=0)
    assert tokens.tolist() == [[5, 6, 7], [8, 0, 0]] and lengths.tolist() == [3, 1]
    assert tokens.dtype == lengths.dtype == torch.int64 and lengths.device.type == "cpu"
    batch = ClassificationCollate(0)([([4, 5], 1, 7), ([6], 0, 3)])
    assert batch["labels"].tolist() == [1, 0] and batch["lengths"].tolist() == [2, 1]
    assert batch["index"].tolist() == [7, 3]


def test_pad_sequences_pads_feature_vectors_of_any_dtype():
    a = np.arange(6, dtype=np.float64).reshape(3, 2)  # (T=3, F=2)
    b = torch.tensor([[9.5, -1.0]])  # (T=1, F=2)
    padded, lengths = pad_sequences([a, b, [[7, 8], [7, 8]]], pad_value=-2.0, dtype=torch.float32)
    assert padded.shape == (3, 3, 2) and padded.dtype == torch.float32
    assert lengths.tolist() == [3, 1, 2] and lengths.dtype == torch.int64
    assert padded[0].tolist() == a.tolist()
    assert padded[1].tolist() == [[9.5, -1.0], [-2.0, -2.0], [-2.0, -2.0]]
    assert padded[2, 2].tolist() == [-2.0, -2.0]
    # more feature axes, and positional arguments as the text tasks call it
    cubes, _ = pad_sequences([torch.ones(2, 3, 4), torch.ones(1, 3, 4)], 0, torch.float64)
    assert cubes.shape == (2, 2, 3, 4) and cubes.dtype == torch.float64
    ids, _ = pad_sequences([np.array([4, 5]), torch.tensor([6])], 1)
    assert ids.tolist() == [[4, 5], [6, 1]] and ids.dtype == torch.int64


def test_pad_sequences_rejects_what_it_cannot_pad():
    with pytest.raises(ValueError, match="empty batch"):
        pad_sequences([])
    with pytest.raises(ValueError, match="at least one step"):
        pad_sequences([[1, 2], []])
    with pytest.raises(ValueError, match="at least one step"):
        pad_sequences([np.zeros((0, 3))], dtype=torch.float32)
    with pytest.raises(ValueError, match=r"sequence 1 has steps of shape \(3,\)"):
        pad_sequences([np.zeros((2, 2)), np.zeros((2, 3))], dtype=torch.float32)
    with pytest.raises(ValueError, match="scalar"):
        pad_sequences([torch.tensor(3)])


def test_length_guard_truncates_and_counts():
    guard = LengthGuard(3)
    assert guard([1, 2]) == [1, 2] and guard([1, 2, 3, 4, 5]) == [1, 2, 3]
    assert guard.truncated == 1


def test_datamodule_trains_tokenizer_on_train_split_only():
    dm = SentimentDataModule(SyntheticSentiment(200, seed=0),
                             loader=LoaderOptions(batch_size=8, max_length=6))
    dm.setup("fit")
    train_words = {w for text, _ in dm.source.load("train")[0] for w in dm.tokenizer.tokenize(text)}
    vocab = set(dm.tokenizer.backend.get_vocab()) - set(SPECIALS)
    assert vocab == train_words
    batch = next(iter(dm.train_dataloader()))
    assert batch["tokens"].shape[0] == 8 and int(batch["lengths"].max()) <= 6
    assert dm.truncated > 0  # the guard cut the long sentences, and nothing crashed


def test_datamodule_with_given_tokenizer_never_reads_train():
    class NoTrain(SyntheticSentiment):
        def load(self, split, root=None, on_error="raise"):
            assert split != "train", "evaluation must not read the training split"
            return super().load(split, root, on_error)

    tok = Tokenizer.train_word_level(["the film was good"])
    dm = SentimentDataModule(NoTrain(100), trained_tokenizer=tok.to_json())
    assert len(dm.dataset("test")) == 10


def test_bpe_tokenizer_round_trips_any_text_without_unk():
    texts = ["Ein Hund läuft über die Wiese.", "A dog runs across the meadow!"] * 30
    tok = TokenizerTrainer("bpe", lowercase=False, min_freq=1, vocab_size=300).train(texts)
    assert tok.vocab_size == 300
    unseen = "Zwölf Boxkämpfer jagen Viktor quer über den großen Sylter Deich ☃"
    ids = tok.encode(unseen)
    assert tok.unk_id not in ids and tok.decode(ids) == unseen
    again = TokenizerTrainer("bpe", lowercase=False, min_freq=1, vocab_size=300).train(texts)
    assert again.to_json() == tok.to_json()  # deterministic
    with pytest.raises(ValueError, match="vocab_size"):
        Tokenizer.train_bpe(texts, vocab_size=100)


def test_char_tokenizer_is_exact_on_newlines_and_case():
    tok = TokenizerTrainer("char", lowercase=False).train(["First Citizen:\nBefore we proceed"])
    text = "First\nCitizen"
    assert tok.tokenize("ab\nC") == ["<unk>", "<unk>", "\n", "C"]
    assert tok.decode(tok.encode(text)) == text
    assert tok.vocab_size == 4 + len(set("First Citizen:\nBefore we proceed"))


def test_tokenizer_trainer_rejects_bad_specs():
    with pytest.raises(ValueError, match="kind"):
        TokenizerTrainer("sentencepiece")
    with pytest.raises(ValueError, match="bpe tokenizer needs a vocab_size"):
        TokenizerTrainer("bpe", vocab_size=None)
    assert TokenizerTrainer("word").fingerprint() != TokenizerTrainer("char").fingerprint()


# ------------------------------------------------------------ fitted state
def test_a_tokenizer_is_fitted_state(tmp_path: Path):
    tok = Tokenizer.train_word_level(["the film was good"])
    assert isinstance(tok, Fitted)
    path = tmp_path / "deep" / "tok.json"
    save_fitted(tok, path)
    assert [p.name for p in path.parent.iterdir()] == ["tok.json"]  # no temporary file left
    again = load_fitted(Tokenizer, path)
    assert isinstance(again, Tokenizer) and again.to_json() == tok.to_json()


def test_fitted_state_and_the_data_package_import_without_torch():
    code = ("import sys\n"
            "import nlp_lstm.fitted, nlp_lstm.data\n"
            "assert 'torch' not in sys.modules, 'torch'\n"
            "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


class Scaler:
    """Per-feature mean and standard deviation: fitted state that is no tokenizer."""

    def __init__(self, mean: list[float], std: list[float]) -> None:
        self.mean, self.std = mean, std

    @classmethod
    def fit(cls, rows: list[list[float]]) -> Scaler:
        columns = list(zip(*rows, strict=True))
        mean = [sum(c) / len(c) for c in columns]
        std = [math.sqrt(sum((x - m) ** 2 for x in c) / len(c)) or 1.0
               for c, m in zip(columns, mean, strict=True)]
        return cls(mean, std)

    def to_json(self) -> str:
        return json.dumps({"mean": self.mean, "std": self.std})

    @classmethod
    def from_json(cls, text: str) -> Scaler:
        return cls(**json.loads(text))


class Waves:
    """Windows of a two-feature sine wave: (T, F=2) float examples, no text."""

    splits = ("train", "val")

    def __init__(self, forbid_train: bool = False) -> None:
        self.forbid_train = forbid_train

    def prepare(self, root: Path) -> None:
        pass

    def fingerprint(self, root: Path) -> str:
        return "waves-1"

    def load(self, split: str, root: Path, on_error: str = "raise") -> tuple[list, int]:
        assert not (self.forbid_train and split == "train"), "the scaler must come from the cache"
        offset = 0 if split == "train" else 100
        windows = [[[math.sin(0.3 * (offset + i + t)), 2.0 + math.cos(0.3 * (offset + i + t))]
                    for t in range(4 + i % 3)] for i in range(12)]
        return windows, 0


class WaveData(DataModule):
    task = "waves"

    def __init__(self, source: Waves, trained_scaler: str | None = None, **kwargs: Any) -> None:
        super().__init__(source, **kwargs)
        self.scaler = Scaler.from_json(trained_scaler) if trained_scaler else None

    def fitted_names(self) -> tuple[str, ...]:
        return ("scaler",)

    def fitted_to_build(self) -> dict[str, ToFit]:
        if self.scaler is not None:
            return {}
        fit = lambda: Scaler.fit([step for w in self._examples("train") for step in w])  # noqa: E731
        return {"scaler": ToFit(self.fitted_cache("scaler-v1", "x-"), fit, Scaler)}

    def dataloader(self, split: str, *, shuffle: bool = False) -> Any:
        if self.fitted_to_build():
            self.setup()
        windows = [[[(x - m) / s for x, m, s in zip(step, self.scaler.mean, self.scaler.std,
                                                     strict=True)] for step in w]
                   for w in self._examples(split)]

        def collate(batch: list[list[list[float]]]) -> dict[str, torch.Tensor]:
            series, lengths = pad_sequences(batch, dtype=torch.float32)  # (B, T, F), (B,)
            return {"series": series, "lengths": lengths}

        return self.loader(windows, collate,
                           self.batch_sampler([len(w) for w in windows], shuffle=shuffle))

    def statistics(self) -> dict[str, Any]:
        splits = {s: {"examples": len(self._examples(s)),
                      "time_steps": sum(map(len, self._examples(s)))} for s in self.splits}
        return {"splits": splits, "padding_waste": 0.25}


def test_data_module_fits_caches_and_exports_any_fitted_state(tmp_path: Path):
    dm = WaveData(Waves(), cache_dir=str(tmp_path), loader=LoaderOptions(batch_size=4))
    assert list(dm.fitted_to_build()) == ["scaler"]
    dm.prepare_data()  # rank 0: fits and caches
    [cached] = (tmp_path / "fitted").iterdir()
    assert cached.name == "WaveData-waves-1-x-scaler-v1.json"
    dm.setup("fit")
    assert dm.fitted_to_build() == {}
    assert abs(sum(dm.scaler.mean) - 2.0) < 0.5

    # every other rank loads the cache and never reads the training split
    rank = WaveData(Waves(forbid_train=True), cache_dir=str(tmp_path),
                    loader=LoaderOptions(batch_size=4))
    rank.setup("fit")
    assert rank.fitted_state() == {"scaler": cached.read_text()} == dm.fitted_state()

    # given state (from a checkpoint) needs no fitting, no cache, no training split
    given = WaveData(Waves(forbid_train=True), trained_scaler=dm.fitted_state()["scaler"])
    assert given.fitted_to_build() == {}
    batch = next(iter(given.dataloader("val")))
    assert batch["series"].dtype == torch.float32 and batch["series"].shape[2] == 2
    assert given.evaluation_size(given.dataloader("val")) == ("examples", 12)


def test_data_module_without_cache_fits_in_setup():
    dm = WaveData(Waves(), loader=LoaderOptions(batch_size=4))
    assert dm.fitted_cache("scaler-v1") is None
    dm.prepare_data()
    assert dm.scaler is None  # nothing cached, nothing kept
    assert json.loads(dm.fitted_state()["scaler"])["std"][0] > 0  # fitted on demand


def test_base_data_module_carries_no_state():
    dm = DataModule(Waves())
    assert dm.fitted_names() == () and dm.fitted_to_build() == {} and dm.fitted_state() == {}


def test_text_data_module_reports_its_tokenizer():
    dm = SentimentDataModule(SyntheticSentiment(100, seed=0), loader=LoaderOptions(batch_size=8))
    assert dm.fitted_names() == ("tokenizer",) and list(dm.fitted_to_build()) == ["tokenizer"]
    state = dm.fitted_state()
    assert state == {"tokenizer": dm.tokenizer.to_json()} and dm.fitted_to_build() == {}
    assert dm.evaluation_size(dm.dataloader("val")) == ("examples", 10)


# -------------------------------------------------------------- statistics
def test_stats_print_without_a_vocabulary(capsys):
    dm = WaveData(Waves(), loader=LoaderOptions(batch_size=4))
    stats = {"data": "waves", **dm.statistics()}
    _print(stats)
    *table, last = capsys.readouterr().out.strip().splitlines()
    shown = " ".join(" ".join(table).split())  # rich wraps long lines
    assert "time_steps" in shown and "tokens" not in shown and "vocabulary" not in shown
    assert "25.00% of real time steps" in shown
    assert json.loads(last) == stats


def test_stats_print_of_text_is_unchanged(capsys):
    stats = {"data": "text", "splits": {"train": {"examples": 2, "tokens": 1234,
                                                  "characters": 5678, "skipped": 1}},
             "vocab_size": 4321, "padding_waste": 0.05}
    _print(stats)
    *table, last = capsys.readouterr().out.strip().splitlines()
    shown = " ".join(" ".join(table).split())  # rich wraps long lines
    assert "1,234" in shown and "5,678" in shown and "skipped" not in shown
    assert ("vocabulary: 4,321 tokens; padding waste of one training epoch: 5.00% of real "
            "tokens") in shown
    assert json.loads(last) == stats
