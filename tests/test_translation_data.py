"""The parallel corpus, translation sources and the translation data module."""

from __future__ import annotations

import collections
import gzip
import os
import re
from pathlib import Path

import pytest
import torch

from nlp_lstm.data import TokenizerTrainer
from nlp_lstm.data.errors import DataError
from nlp_lstm.data.loader import LoaderOptions
from nlp_lstm.data.tokenizer import SPECIALS
from nlp_lstm.translation import SyntheticTranslation, TranslationDataModule
from nlp_lstm.translation.corpus import (
    ADJECTIVES,
    ANIMATES,
    INTRANSITIVE,
    PLACES,
    THINGS,
    TRANSITIVE,
    count_words,
    generate_translation,
)
from nlp_lstm.translation.data import Multi30k, ParallelFiles

REAL = os.environ.get("NLP_LSTM_DATA")
WORD = TokenizerTrainer(kind="word", lowercase=False)


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text)


# ------------------------------------------------------------------------------ corpus
def test_corpus_is_deterministic_and_seeded():
    assert generate_translation(300, seed=3) == generate_translation(300, seed=3)
    assert generate_translation(300, seed=3) != generate_translation(300, seed=4)


def test_corpus_splits_are_distinct_sized_and_short():
    source = SyntheticTranslation(num_examples=1000, seed=0)
    splits = {s: source.load(s)[0] for s in source.splits}
    assert [len(splits[s]) for s in ("train", "val", "test")] == [800, 100, 100]
    sources = [{src.lower() for src, _ in pairs} for pairs in splits.values()]
    assert sum(map(len, sources)) == 1000  # distinct within and across splits
    assert all(5 <= count_words(src) <= 20 for pairs in splits.values() for src, _ in pairs)
    assert (source.src_lang, source.tgt_lang) == ("en", "de-synthetic")
    with pytest.raises(ValueError, match="unknown split"):
        source.load("dev")


def test_corpus_evaluation_words_are_all_seen_in_training():
    """At the default size a model can know every word it is asked to read or write."""
    source = SyntheticTranslation(seed=0)
    train = [set(_words(" ".join(side))) for side in zip(*source.load("train")[0], strict=True)]
    for split in ("val", "test"):
        for side, seen in zip(zip(*source.load(split)[0], strict=True), train, strict=True):
            assert set(_words(" ".join(side))) <= seen


def _lexicon() -> dict[str, set[str]]:
    """English noun and verb forms -> the target forms of the same word."""
    lex: dict[str, set[str]] = {}
    for sg, pl, de_sg, de_pl, _ in ANIMATES + THINGS + PLACES:
        forms = {de_sg, de_pl, de_pl + "n"}
        lex[sg] = lex[pl] = forms
    for en, de, *_ in TRANSITIVE + INTRANSITIVE:
        for form in en:
            lex[form.split()[0]] = set(de)
    return lex


def test_corpus_needs_reordering():
    """Align the nouns and verbs word by word: in most pairs the target order differs."""
    lex = _lexicon()
    pairs = generate_translation(2000, seed=0)
    reordered = 0
    for pair in pairs:
        target = _words(pair.target)
        used: set[int] = set()
        positions = []
        for word in _words(pair.source.lower()):
            if word in lex:
                j = next(j for j, t in enumerate(target) if t in lex[word] and j not in used)
                used.add(j)
                positions.append(j)
        reordered += positions != sorted(positions)
    assert reordered / len(pairs) > 0.5, reordered


def test_corpus_needs_agreement():
    """The same English words ("A big ...") take target forms that depend on the noun's
    gender, which English does not show; and the form is the same for the same gender."""
    gender = {sg: g for sg, _, _, _, g in ANIMATES + THINGS + PLACES}
    adjectives = {en for en, _ in ADJECTIVES}
    forms: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
    for pair in generate_translation(6000, seed=0):
        src, tgt = pair.source.lower().split(), pair.target.split()
        if src[0] == "a" and src[1] in adjectives and src[2] in gender:
            forms[src[1], gender[src[2]]].add(tgt[1])  # "Ein großer Hund", "Ein großes Haus"
    assert all(len(f) == 1 for f in forms.values()), forms
    by_adjective = collections.defaultdict(set)
    for (adjective, _), f in forms.items():
        by_adjective[adjective] |= f
    assert sum(len(f) == 3 for f in by_adjective.values()) >= 10, by_adjective
    the = collections.Counter(
        t.lower() for p in generate_translation(2000, seed=0) for t in p.target.split()
        if t.lower() in ("der", "die", "das", "den", "dem"))
    assert len(the) == 5  # "the" has five target forms, chosen by gender, number and case


# ------------------------------------------------------------------------- data module
def test_batches_frame_the_target_and_pad_with_zero():
    dm = TranslationDataModule(SyntheticTranslation(200, seed=0), WORD,
                               loader=LoaderOptions(batch_size=8))
    batch = next(iter(dm.train_dataloader()))
    B, S = batch["src"].shape
    T = batch["tgt_in"].shape[1]
    assert B == 8 and batch["tgt_out"].shape == (B, T)
    references = batch.pop("references")
    assert len(set(batch.pop("index").tolist())) == B
    assert all(v.dtype == torch.int64 and v.device.type == "cpu" for v in batch.values())
    tok = dm.target_tokenizer
    assert (batch["tgt_in"][:, 0] == tok.bos_id).all()
    for row in range(B):
        s, t = int(batch["src_lengths"][row]), int(batch["tgt_lengths"][row])
        assert s == S or (batch["src"][row, s:] == 0).all()
        assert (batch["tgt_in"][row, t:] == 0).all() and (batch["tgt_out"][row, t:] == 0).all()
        assert batch["tgt_out"][row, t - 1] == tok.eos_id
        assert torch.equal(batch["tgt_in"][row, 1:t], batch["tgt_out"][row, : t - 1])
        assert tok.decode(batch["tgt_out"][row, : t - 1].tolist()) == references[row]
    assert int(batch["src_lengths"].max()) == S and int(batch["tgt_lengths"].max()) == T
    assert dm.train_dataloader().batch_sampler.shuffle
    assert not dm.val_dataloader().batch_sampler.shuffle


def test_length_guard_cuts_both_sides_and_counts():
    dm = TranslationDataModule(SyntheticTranslation(200, seed=0), WORD,
                               loader=LoaderOptions(batch_size=8, max_length=6))
    for batch in dm.train_dataloader():
        assert batch["src"].shape[1] <= 6 and batch["tgt_in"].shape[1] <= 6
    assert dm.guard.truncated > 0 and dm.target_guard.truncated > 0
    assert dm.truncated == dm.guard.truncated + dm.target_guard.truncated
    eos = dm.target_tokenizer.eos_id
    for (_, text), (_, t) in zip(dm.source.load("train")[0], dm.dataset("train"), strict=True):
        assert (t[-1] == eos) == (len(_spaced(text)) <= 5)  # a cut target has no false ending


def test_joint_and_separate_vocabularies():
    source = SyntheticTranslation(300, seed=0)
    joint = TranslationDataModule(source, WORD)
    joint.setup()
    assert joint.target_tokenizer is joint.tokenizer
    assert {"dog", "Hund"} <= set(joint.tokenizer.backend.get_vocab())
    assert "target_vocab_size" not in joint.statistics()

    separate = TranslationDataModule(source, WORD, target_tokenizer=WORD)
    separate.setup()
    src_vocab = set(separate.tokenizer.backend.get_vocab())
    tgt_vocab = set(separate.target_tokenizer.backend.get_vocab())
    assert "dog" in src_vocab and "Hund" not in src_vocab
    assert "Hund" in tgt_vocab and "dog" not in tgt_vocab
    stats = separate.statistics()
    assert stats["vocab_size"] == len(src_vocab) and stats["target_vocab_size"] == len(tgt_vocab)
    _, tgt = separate.dataset("val")[0]
    assert separate.target_tokenizer.decode(tgt) == source.load("val")[0][0][1]


def _spaced(text: str) -> list[str]:
    """Text as the word-level decoder writes it: punctuation as separate words."""
    return re.findall(r"\w+|[^\w\s]", text)


def test_statistics_count_both_sides():
    dm = TranslationDataModule(SyntheticTranslation(100, seed=0), WORD,
                               loader=LoaderOptions(batch_size=4))
    dm.setup()
    stats = dm.statistics()
    val = dm.source.load("val")[0]
    assert stats["splits"]["val"] == {
        "examples": 10,
        "tokens": sum(len(_spaced(s)) + len(_spaced(t)) for s, t in val),
        "characters": sum(len(s) + len(t) for s, t in val),
    }
    assert stats["vocab_size"] == dm.tokenizer.vocab_size and 0 <= stats["padding_waste"] < 0.5


def _write(path: Path, lines: list[str]) -> str:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return str(path)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, list[str]]:
    return {
        "train": [_write(tmp_path / "train.en", ["a red dog", "the cat", "a cat"]),
                  _write(tmp_path / "train.de", ["ein roter Hund", "die Katze", "eine Katze"])],
        "val": [_write(tmp_path / "val.en", ["a zebra"]),
                _write(tmp_path / "val.de", ["ein Zebra"])],
    }


def test_tokenizers_learn_from_the_training_split_only(files):
    dm = TranslationDataModule(ParallelFiles(**files), WORD, loader=LoaderOptions(batch_size=2))
    dm.setup()
    vocab = set(dm.tokenizer.backend.get_vocab()) - set(SPECIALS)
    assert vocab == {"a", "red", "dog", "the", "cat", "ein", "roter", "Hund", "die", "Katze",
                     "eine"}
    src, tgt = dm.dataset("val")[0]
    assert src == [dm.tokenizer.backend.token_to_id("a"), dm.tokenizer.unk_id]  # "a zebra"
    assert tgt[2] == dm.tokenizer.unk_id  # <bos> ein <unk> <eos>


class _NoTrain(ParallelFiles):
    def load(self, split, root, on_error="raise"):
        assert split != "train", "the tokenizers must come from the cache, not the train split"
        return super().load(split, root, on_error)


@pytest.mark.parametrize("separate", [False, True])
def test_tokenizers_are_cached_and_reused(files, tmp_path, separate):
    target = WORD if separate else None
    cache = tmp_path / "cache"
    dm = TranslationDataModule(ParallelFiles(**files), WORD, target_tokenizer=target,
                               cache_dir=str(cache))
    dm.prepare_data()
    cached = sorted(p.name for p in (cache / "tokenizers").iterdir())
    assert len(cached) == (2 if separate else 1)
    assert all(("-src-" in n or "-tgt-" in n) if separate else "-joint-" in n for n in cached)
    dm.setup()
    again = TranslationDataModule(_NoTrain(**files), WORD, target_tokenizer=target,
                                  cache_dir=str(cache))
    again.prepare_data()
    again.setup()
    assert again.tokenizer.to_json() == dm.tokenizer.to_json()
    assert again.target_tokenizer.to_json() == dm.target_tokenizer.to_json()


def test_tokenizers_travel_as_json(files):
    dm = TranslationDataModule(ParallelFiles(**files), WORD, target_tokenizer=WORD)
    dm.setup()
    again = TranslationDataModule(_NoTrain(**files), trained_tokenizer=dm.tokenizer.to_json(),
                                  trained_target_tokenizer=dm.target_tokenizer.to_json())
    assert not again.joint and again.dataset("val") == dm.dataset("val")
    joint = TranslationDataModule(_NoTrain(**files), trained_tokenizer=dm.tokenizer.to_json())
    assert joint.target_tokenizer is joint.tokenizer


def test_fitted_state_is_what_the_model_takes(files):
    """Named as the model's arguments: a joint model takes no target tokenizer."""
    joint = TranslationDataModule(ParallelFiles(**files), WORD)
    assert list(joint.fitted_to_build()) == ["tokenizer"]
    assert joint.fitted_state() == {"tokenizer": joint.tokenizer.to_json()}
    separate = TranslationDataModule(ParallelFiles(**files), WORD, target_tokenizer=WORD)
    assert list(separate.fitted_to_build()) == ["tokenizer", "target_tokenizer"]
    assert separate.fitted_state() == {"tokenizer": separate.tokenizer.to_json(),
                                       "target_tokenizer": separate.target_tokenizer.to_json()}
    assert separate.fitted_to_build() == {}


# ----------------------------------------------------------------------------- sources
def test_parallel_files_errors(tmp_path, files):
    src = _write(tmp_path / "bad.en", ["one", "", "three"])
    tgt = _write(tmp_path / "bad.de", ["eins", "zwei", "drei"])
    with pytest.raises(DataError, match=r"bad\.en, line 2: empty line"):
        ParallelFiles(train=[src, tgt]).load("train", tmp_path)
    assert ParallelFiles(train=[src, tgt]).load("train", tmp_path, on_error="skip") == (
        [("one", "eins"), ("three", "drei")], 1)
    short = _write(tmp_path / "short.de", ["eins"])
    with pytest.raises(DataError, match=r"has 3 lines but .*short\.de has 1"):
        ParallelFiles(train=[src, short]).load("train", tmp_path, on_error="skip")
    (tmp_path / "latin1.de").write_bytes(b"eins\nzw\xe4i\ndrei\n")
    with pytest.raises(DataError, match=r"latin1\.de, line 2: invalid UTF-8"):
        ParallelFiles(train=[files["train"][0], str(tmp_path / "latin1.de")]).load(
            "train", tmp_path)
    with pytest.raises(DataError, match=r"set data\.source\.val"):
        ParallelFiles(train=files["train"], val=[src, str(tmp_path / "nope.de")]).prepare(tmp_path)
    with pytest.raises(ValueError, match=r"\[source file, target file\]"):
        ParallelFiles(train="train.en")


def _multi30k(root: Path, split: str, n: int) -> None:
    folder = root / "multi30k"
    folder.mkdir(parents=True, exist_ok=True)
    for lang, word in (("de", "Hund"), ("en", "dog")):
        with gzip.open(folder / f"{split}.{lang}.gz", "wt", encoding="utf-8") as f:
            f.writelines(f"{word} {i}\n" for i in range(n))


def test_multi30k_reads_any_split_on_disk(tmp_path):
    for split, n in (("train", 6), ("val", 2), ("test_2016_flickr", 3)):
        _multi30k(tmp_path, split, n)
    source = Multi30k(download=False)
    dm = TranslationDataModule(source, WORD, root=str(tmp_path), loader=LoaderOptions(batch_size=2))
    assert dm.splits == ("train", "val") and (dm.src_lang, dm.tgt_lang) == ("de", "en")
    assert len(dm.dataset("val")) == 2
    assert len(dm.dataset("test_2016_flickr")) == 3  # not in splits, but on disk
    assert next(iter(dm.dataloader("test_2016_flickr")))["src"].shape[0] == 2
    with pytest.raises(DataError, match="download is false"):
        source.load("test_2017_flickr", tmp_path)
    with pytest.raises(DataError, match="not downloadable"):
        Multi30k(download=True).load("tset", tmp_path)  # a typo is not sent to the network
    with pytest.raises(ValueError, match="unknown Multi30k language"):
        Multi30k(src_lang="xx")
    with pytest.raises(ValueError, match="start with 'train'"):
        Multi30k(splits=["val"])


@pytest.mark.realdata
@pytest.mark.skipif(not REAL, reason="set NLP_LSTM_DATA to the data root")
def test_real_multi30k_through_the_data_module(tmp_path):
    dm = TranslationDataModule(Multi30k("de", "en", download=False),
                               TokenizerTrainer(kind="bpe", lowercase=False, min_freq=2,
                                                vocab_size=8000),
                               root=REAL, cache_dir=str(tmp_path),
                               loader=LoaderOptions(batch_size=None, max_tokens=4096))
    dm.prepare_data()
    dm.setup()
    stats = dm.statistics()
    assert stats["splits"]["train"]["examples"] == 29_000
    assert stats["splits"]["val"]["examples"] == 1_014
    assert stats["vocab_size"] == 8000 and stats["padding_waste"] < 0.10
    assert dm.truncated == 0
