"""The language-modelling corpus, text sources and the generation data module."""

from __future__ import annotations

import collections
import gzip
import itertools
import math
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from nlp_lstm.data import TokenizerTrainer
from nlp_lstm.data.errors import DataError
from nlp_lstm.data.loader import LoaderOptions
from nlp_lstm.data.tokenizer import SPECIALS
from nlp_lstm.generation import GenerationDataModule, SyntheticText
from nlp_lstm.generation.corpus import COLORS, COUNTS, ITEMS, Story, generate_stories
from nlp_lstm.generation.data import TextFiles, TinyShakespeare

REAL = os.environ.get("NLP_LSTM_DATA")
CLOSING = "In the end, "


# ------------------------------------------------------------------ corpus
def test_corpus_is_deterministic_and_seeded():
    assert generate_stories(200, seed=3) == generate_stories(200, seed=3)
    assert generate_stories(200, seed=3) != generate_stories(200, seed=4)
    source = SyntheticText(num_documents=100, seed=1)
    assert source.fingerprint(Path()) != SyntheticText(num_documents=100, seed=2).fingerprint(
        Path())


def test_corpus_splits_are_disjoint_and_sized():
    source = SyntheticText(num_documents=500, seed=0)
    splits = {s: source.load(s, Path())[0] for s in source.splits}
    assert [len(splits[s]) for s in ("train", "val", "test")] == [400, 50, 50]
    sets = [set(docs) for docs in splits.values()]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    # The default corpus is small enough for a CPU and large enough to learn from.
    default = SyntheticText()
    size = sum(len(d) + 2 for s in default.splits for d in default.load(s, Path())[0])
    assert 200_000 < size < 500_000


def _balanced(note: str) -> bool:
    stack = []
    for ch in note:
        if ch in "([{":
            stack.append(")]}"["([{".index(ch)])
        elif ch in ")]}" and (not stack or stack.pop() != ch):
            return False
    return not stack


def test_corpus_follows_its_grammar():
    stories = generate_stories(2000, seed=5)
    for story in stories:
        lines = story.text.split("\n")
        assert lines[0].startswith(f"{story.name} ") and f" {story.color} {story.item} " in lines[0]
        assert lines[-1] == (f"{CLOSING}{story.name} put the {story.color} {story.item} back in "
                             f"the {story.place}.")
        assert lines[1] == f"There were {COUNTS[story.errands - 2]} errands that day:"
        errands = lines[2 : 2 + story.errands]
        assert [e.split(".")[0] for e in errands] == [str(k) for k in range(1, story.errands + 1)]
        for errand in errands:  # distractors: never the key color or item
            words = errand.split()
            assert story.color not in words and story.item not in words
            assert words[-2] in COLORS and words[-1] in ITEMS
        rest = lines[2 + story.errands : -1]
        assert rest == [] or (len(rest) == 1 and rest[0].startswith("A note said ")
                              and _balanced(rest[0]))
    depths = collections.Counter(s.text.count("(") + s.text.count("[") + s.text.count("{")
                                 for s in stories)
    assert set(depths) == {0, 1, 2, 3}  # notes nest one to three brackets deep


def _ngram(text: str, k: int) -> dict[str, collections.Counter]:
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for i in range(k, len(text)):
        counts[text[i - k : i]][text[i]] += 1
    return counts


def _closing_name(story: Story) -> list[tuple[int, str]]:
    """The position of the closing name's first character, which identifies the name."""
    i = story.text.index(CLOSING) + len(CLOSING)
    return [(i, story.text[i])]


def _line_starts_after_errands(story: Story) -> list[tuple[int, str]]:
    """Positions just after each errand line: the next number, or the end of the list."""
    positions, offset = [], 0
    for line in story.text.split("\n")[:-1]:
        offset += len(line) + 1
        if line[:1].isdigit():
            positions.append((offset, story.text[offset]))
    return positions


def test_long_range_tokens_defeat_a_10_character_ngram():
    """The closing name and the list's end are fixed by the opening lines, 100+ characters
    back: a 10-character n-gram fit on train predicts them near chance on val (and its
    conditional entropy there is about log2 of the 24 names), while reading the opening gives
    them exactly."""
    source, k = SyntheticText(num_documents=1500, seed=0), 10
    counts = _ngram(source.separator.join(source.load("train", Path())[0]), k)
    val = source.stories("val")

    def score(positions) -> tuple[float, float]:
        hits = bits = n = 0
        for story in val:
            for i, truth in positions(story):
                seen = counts.get(story.text[i - k : i], collections.Counter())
                total = sum(seen.values())
                n += 1
                hits += bool(seen) and seen.most_common(1)[0][0] == truth
                bits += -math.log2(seen[truth] / total) if seen[truth] else 10.0
        return hits / n, bits / n

    name_accuracy, name_bits = score(_closing_name)
    assert name_accuracy < 0.1 and name_bits > 4.0  # chance: 1/24 = 0.042, log2(24) = 4.58
    assert all(s.text[i] == s.name[0] for s in val for i, _ in _closing_name(s))  # copying: 100%
    assert all(s.text[s.text.index(CLOSING):].split()[3] == s.name for s in val)

    list_accuracy, _ = score(_line_starts_after_errands)
    counted = [str(n + 1) if n < s.errands else "AI"
               for s in val for n in range(1, s.errands + 1)]
    truths = [truth for s in val for _, truth in _line_starts_after_errands(s)]
    assert all(t in c for t, c in zip(truths, counted, strict=True))  # counting: 100%
    assert list_accuracy < 0.4


# ------------------------------------------------------------- streams
def _module(mode: str = "stream", seq_len: int = 128, **loader) -> GenerationDataModule:
    """The data module of the embedded corpus; ``loader``: LoaderOptions' fields."""
    return GenerationDataModule(SyntheticText(num_documents=60, seed=0), mode=mode,
                                seq_len=seq_len, loader=LoaderOptions(**loader))


def test_stream_batches_are_contiguous_and_shifted():
    dm = _module(batch_size=4, seq_len=16)
    batches = list(dm.train_dataloader())
    assert len(batches) > 2 and list(batches[0]) == ["input", "target", "characters", "probe"]
    for batch in batches:
        assert batch["input"].dtype == torch.int64 and batch["input"].device.type == "cpu"
        assert batch["input"].shape == batch["target"].shape
        assert batch["input"].shape[0] == 4 and batch["input"].shape[1] <= 16
        assert torch.equal(batch["target"][:, :-1], batch["input"][:, 1:])  # shifted by one
    for prev, nxt in itertools.pairwise(batches):
        assert torch.equal(nxt["input"][:, 0], prev["target"][:, -1])  # every stream goes on
    # Row 0 of the batches, concatenated, is the start of the split's text.
    row = torch.cat([b["input"][0] for b in batches])  # (steps,)
    text = dm.separator.join(dm.source.load("train", Path())[0])
    assert dm.tokenizer.decode(row.tolist()) == text[: row.numel()]
    assert dm.statistics()["padding_waste"] == 0.0


def test_evaluation_counts_stream_tokens_and_sentence_examples():
    stream = _module(batch_size=4, seq_len=16)
    loader = stream.val_dataloader()
    predicted = sum(b["target"].numel() for b in loader)
    assert stream.evaluation_size(loader) == ("tokens", predicted)
    sentences = _module(mode="sentences", batch_size=4)
    assert sentences.evaluation_size(sentences.val_dataloader()) == ("examples", 6)


def test_stream_ranks_get_distinct_streams():
    rows = []
    for rank in range(2):
        dm = _module(batch_size=2, seq_len=8)
        dm.trainer = SimpleNamespace(world_size=2, global_rank=rank)
        batches = list(dm.val_dataloader())
        rows.append(torch.cat([b["input"] for b in batches], dim=1))  # (B, steps)
    assert rows[0].shape == rows[1].shape
    starts = {tuple(r[:8].tolist()) for ranked in rows for r in ranked}
    assert len(starts) == 4  # four different streams across the two ranks


# ----------------------------------------------------------- sentences
def test_sentence_batches_start_with_bos_and_end_with_eos():
    dm = _module(mode="sentences", batch_size=8, max_length=512)
    dm.setup("fit")
    tok = dm.tokenizer
    n = 0
    for batch in dm.train_dataloader():
        inputs, target, lengths = batch["input"], batch["target"], batch["lengths"]
        assert inputs.shape == target.shape and inputs.shape[0] <= 8
        assert inputs.dtype == target.dtype == lengths.dtype == torch.int64
        assert (inputs[:, 0] == tok.bos_id).all()
        for row in range(inputs.shape[0]):
            length = int(lengths[row])
            assert int(target[row, length - 1]) == tok.eos_id
            assert torch.equal(inputs[row, 1:length], target[row, : length - 1])
            assert (target[row, length:] == tok.pad_id).all()
            assert (inputs[row, length:] == tok.pad_id).all()
        n += inputs.shape[0]
    assert n == 48 and dm.truncated == 0
    stats = dm.statistics()
    assert stats["splits"]["train"]["examples"] == 48
    assert 0.0 < stats["padding_waste"] < 0.2


def test_sentences_are_truncated_to_max_length():
    dm = _module(mode="sentences", batch_size=8, max_length=40)
    batch = next(iter(dm.val_dataloader()))
    assert int(batch["lengths"].max()) == 40 and dm.truncated == 6  # every story is longer
    assert (batch["target"][:, -1] != dm.tokenizer.eos_id).all()  # cut text has no end


def test_constructor_checks_its_arguments():
    with pytest.raises(ValueError, match="mode"):
        _module(mode="words")
    with pytest.raises(ValueError, match="seq_len"):
        _module(seq_len=0)
    with pytest.raises(ValueError, match="batch_size"):
        _module(batch_size=None, max_tokens=100)


# ------------------------------------------------------------- sources
def test_tokenizer_learns_from_the_train_split_only(tmp_path):
    (tmp_path / "train.txt").write_text("abab\nba\n", encoding="utf-8")
    (tmp_path / "val.txt").write_text("abz\n", encoding="utf-8")
    source = TextFiles(str(tmp_path / "train.txt"), val=str(tmp_path / "val.txt"))
    dm = GenerationDataModule(source,
                              loader=LoaderOptions(batch_size=1), seq_len=2, root=str(tmp_path),
                                 cache_dir=str(tmp_path / "cache"))
    dm.prepare_data()
    dm.setup("fit")
    assert set(dm.tokenizer.backend.get_vocab()) == {*SPECIALS, "a", "b", "\n"}
    assert dm.stream("val").tolist()[2] == dm.tokenizer.unk_id  # "z" is unseen
    assert list((tmp_path / "cache" / "tokenizers").glob("*.json"))  # cached by the base


def test_text_files_hold_out_val_fraction(tmp_path):
    text = "".join(f"line {i}\n" for i in range(20))  # 150 characters
    path = tmp_path / "book.txt.gz"
    path.write_bytes(gzip.compress(text.replace("\n", "\r\n").encode()))
    source = TextFiles(str(path), val_fraction=0.1)
    assert source.splits == ("train", "val")
    train, val = ("\n".join(source.load(s, tmp_path)[0]) for s in source.splits)
    assert (train, val) == (text[:135], text[135:])  # the last 15 characters validate
    dm = GenerationDataModule(source,
                              loader=LoaderOptions(batch_size=2), seq_len=4, root=str(tmp_path))
    dm.setup("fit")
    stats = dm.statistics()["splits"]
    assert (stats["train"]["characters"], stats["val"]["characters"]) == (135, 15)
    assert stats["train"]["tokens"] == 135 and stats["val"]["examples"] == 2


def test_text_files_errors_name_the_file_and_line(tmp_path):
    with pytest.raises(ValueError, match="val_fraction"):
        TextFiles("x.txt", val_fraction=1.0)
    missing = TextFiles(str(tmp_path / "nope.txt"))
    with pytest.raises(DataError, match=r"nope\.txt.*data\.source\.train"):
        missing.prepare(tmp_path)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\nbroken \xff here\n")
    with pytest.raises(DataError, match=r"bad\.txt, line 2: invalid UTF-8"):
        TextFiles(str(bad)).load("train", tmp_path)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.txt: empty file"):
        TextFiles(str(empty)).load("train", tmp_path)
    short = tmp_path / "short.txt"
    short.write_text("abc", encoding="utf-8")
    with pytest.raises(DataError, match=r"short\.txt: 3 characters are too few"):
        TextFiles(str(short)).load("val", tmp_path)


def test_tiny_shakespeare_without_download_names_the_file(tmp_path):
    with pytest.raises(DataError, match=r"tinyshakespeare/input\.txt is missing"):
        TinyShakespeare(download=False).prepare(tmp_path)


@pytest.mark.realdata
@pytest.mark.skipif(not REAL, reason="set NLP_LSTM_DATA to the data root")
def test_real_tinyshakespeare_through_the_data_module(tmp_path):
    dm = GenerationDataModule(
        TinyShakespeare(download=False), TokenizerTrainer(kind="char", lowercase=False,
                                                          vocab_size=None),
        root=REAL, cache_dir=str(tmp_path), loader=LoaderOptions(batch_size=64), seq_len=128)
    dm.prepare_data()
    dm.setup("fit")
    stats = dm.statistics()
    assert stats["splits"]["train"]["characters"] == 1_003_854
    assert stats["splits"]["val"]["characters"] == 111_540
    assert stats["splits"]["train"]["tokens"] == 1_003_854  # one token a character
    assert stats["vocab_size"] == 65 + len(SPECIALS)
    assert dm.tokenizer.unk_id not in dm.stream("val").tolist()
    batch = next(iter(dm.train_dataloader()))
    assert batch["input"].shape == (64, 128)
    assert dm.tokenizer.decode(batch["input"][0, :14].tolist()) == "First Citizen:"
