"""The contamination check: n-gram containment counts on a handmade corpus, the normalisation
that makes differently tokenised copies match, argument validation, speed on many documents,
and the Lightning callback on a real one-step run."""

from __future__ import annotations

import functools
import json
import random
from pathlib import Path

import pytest

from nlp_lstm.data.loader import LoaderOptions
from nlp_lstm.training.contamination import Contamination, check, ngrams, words

COPIED = "the acting is wooden and the plot never once makes any sense at all"
SHARED = "a dull movie where the acting is wooden and the plot never drags"  # 1 shared 8-gram
UNRELATED = "sunny weather brings crowds to the beach every single summer weekend here"
PRETRAIN = [
    f"I watched it last night. {COPIED.capitalize()}! Avoid.",
    "Nothing else in this document resembles any evaluation sentence whatsoever, promise.",
]


# ------------------------------------------------------------------- normalisation
def test_words_splits_negations_and_clitics_as_ptb_and_drops_markup_and_punctuation():
    assert words("It doesn't work.<br />It's O'Brien's fault, isn't it?") == [
        "it", "does", "n't", "work", "it", "'s", "o'brien", "'s", "fault", "is", "n't", "it"]
    # SST-2's tokenisation of the same text normalises to the same words.
    assert words("it does n't work . it 's o'brien 's fault , is n't it ?") == words(
        "It doesn't work.<br />It's O'Brien's fault, isn't it?")
    assert words("can't won't") == ["ca", "n't", "wo", "n't"]  # as PTB: ca n't, wo n't
    assert words("<BR>a<br/>b<br >c") == ["a", "b", "c"]
    assert words("'quoted' rock 'n' roll -LRB- aside -RRB- \u201cyes\u201d we\u2019ll") == [
        "quoted", "rock", "n", "roll", "aside", "yes", "we", "'ll"]


def test_ngrams_of_normalised_words_and_none_for_short_texts():
    assert ngrams("The film doesn't work.", 3) == [("the", "film", "does"),
                                                  ("film", "does", "n't"),
                                                  ("does", "n't", "work")]
    assert ngrams("the film does n't work", 3) == ngrams("The film doesn't work.", 3)
    assert ngrams("two words", 3) == []
    assert ngrams("one", 1) == [("one",)]


# ------------------------------------------------------------------------ counts
def test_copied_sentence_is_contained_shared_ngram_only_hit_unrelated_neither():
    evals = {"dev": [COPIED, SHARED, UNRELATED, "too short to count"]}
    [report] = check(iter(PRETRAIN), evals, n=8)
    # COPIED: 14 words, 7 8-grams, all seen. SHARED: 13 words, 6 8-grams, one seen ("the
    # acting is wooden and the plot never"). UNRELATED: 12 words, 5 8-grams, none seen.
    assert [len(words(text)) for text in (COPIED, SHARED, UNRELATED)] == [14, 13, 12]
    assert set(ngrams(SHARED, 8)) & set(ngrams(COPIED, 8)) == {
        ("the", "acting", "is", "wooden", "and", "the", "plot", "never")}
    assert report == Contamination(
        name="dev", n=8, threshold=0.5, examples=4, examples_with_ngrams=3, hit_examples=2,
        contained_examples=1, ngrams_total=7 + 6 + 5, ngrams_hit=7 + 1)
    assert report.hit_share == 0.5 and report.contained_share == 0.25
    line = report.summary()
    assert "4 examples" in line and "2 hit (50.0%)" in line and "1 contained" in line
    assert "8/18 8-grams seen (44.4%)" in line
    assert json.loads(json.dumps(report.to_dict()))["contained_share"] == 0.25


def test_threshold_decides_contained_and_sets_are_reported_in_order():
    evals = {"a": [SHARED], "b": [COPIED], "empty": []}
    low, full, empty = check(PRETRAIN, evals, n=8, threshold=1 / 6)
    assert (low.name, low.hit_examples, low.contained_examples) == ("a", 1, 1)  # 1/6 >= 1/6
    assert (full.name, full.contained_examples) == ("b", 1)
    assert empty == Contamination("empty", 8, 1 / 6) and empty.summary().startswith("empty: 0")
    [strict] = check(PRETRAIN, {"a": [SHARED]}, n=8, threshold=0.5)
    assert (strict.hit_examples, strict.contained_examples) == (1, 0)


def test_differently_tokenised_copy_is_contained():
    review = "This movie doesn't deliver.<br /><br />It's a mess, and it isn't even funny."
    sst = "this movie does n't deliver . it 's a mess , and it is n't even funny ."
    [report] = check([review], {"sst": [sst]}, n=8)
    assert report.contained_examples == 1 and report.ngrams_hit == report.ngrams_total == 8


def test_short_texts_are_counted_without_ngrams_on_both_sides():
    [report] = check(["only five words in here", COPIED], {"dev": ["five words", "a b c"]}, n=4)
    assert (report.examples, report.examples_with_ngrams, report.ngrams_total) == (2, 0, 0)
    assert report.hit_examples == report.contained_examples == 0
    assert "0/0 4-grams seen (0.0%)" in report.summary()


@pytest.mark.parametrize("n", [0, -1, 2.0, True, "8"])
def test_bad_n_raises(n):
    with pytest.raises(ValueError, match=f"n must be an integer >= 1, got {n!r}"):
        check([], {"dev": ["x"]}, n=n)
    with pytest.raises(ValueError, match="n must be"):
        ngrams("a b", n)


@pytest.mark.parametrize("threshold", [0, 0.0, -0.5, 1.01, float("nan"), "0.5"])
def test_bad_threshold_raises(threshold):
    with pytest.raises(ValueError, match="threshold must be in"):
        check([], {"dev": ["x"]}, threshold=threshold)


def test_many_pretraining_documents_are_streamed_once():
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(2000)]
    evals = [" ".join(rng.choices(vocab, k=12)) for _ in range(100)]
    documents = (" ".join(rng.choices(vocab, k=10)) for _ in range(200_000))  # a generator
    planted = [evals[0], f"prefix {evals[1]} suffix"]
    [report] = check((*planted, *documents), {"random": evals}, n=8)
    assert report.examples == report.examples_with_ngrams == 100
    assert report.contained_examples == 2 and report.hit_examples == 2  # chance hits: ~0


# ---------------------------------------------------------------------- callback
class ListSource:
    """A source of fixed examples (strings or (text, label) pairs) that ignores the root."""

    def __init__(self, examples: list, root_seen: list | None = None) -> None:
        self.examples, self.root_seen = examples, root_seen

    def load(self, split: str, root: Path, on_error: str = "raise") -> tuple[list, int]:
        if self.root_seen is not None:
            self.root_seen.append((split, root))
        return self.examples, 0


class MissingSource:
    def load(self, split: str, root: Path, on_error: str = "raise") -> tuple[list, int]:
        raise FileNotFoundError(f"{root}/sst2/dev.tsv not found")


def test_callback_checks_the_training_text_on_fit_start(tmp_path, capsys):
    import pytorch_lightning as pl
    import torch

    from nlp_lstm.generation import GenerationDataModule, LanguageModel, SyntheticText
    from nlp_lstm.training.contamination_callback import ContaminationCheck

    dm = GenerationDataModule(SyntheticText(40),
                              loader=LoaderOptions(batch_size=2), seq_len=16, cache_dir=None,
                              root=str(tmp_path / "data"))
    dm.setup()
    story = dm._examples("train")[0]
    closing = story.splitlines()[-1]  # "In the end, Kira put the gold flute back in the attic."
    roots: list = []
    callback = ContaminationCheck({
        "copied": {"source": ListSource([(closing, 1), (UNRELATED, 0)], roots), "split": "val"},
        "clean": {"source": ListSource([UNRELATED])},
        "missing": {"source": MissingSource(), "split": "val"},
    })
    torch.manual_seed(0)
    model = LanguageModel(dm.tokenizer.to_json(), dm.separator, embedding_dim=8,
                          encoder={"hidden_size": 8},
                          optimizer=functools.partial(torch.optim.SGD, lr=0.1))
    trainer = pl.Trainer(max_steps=1, logger=False, enable_checkpointing=False,
                         accelerator="cpu", default_root_dir=tmp_path, callbacks=[callback],
                         enable_progress_bar=False, enable_model_summary=False,
                         limit_val_batches=0)
    trainer.fit(model, datamodule=dm)

    out = capsys.readouterr().out
    assert f"warning: contamination: skipped missing: {tmp_path / 'data'}/sst2/dev.tsv" in out
    assert "contamination: copied: 2 examples" in out
    assert "warning: contamination: copied: 50.0% of its examples" in out
    assert "contamination: clean: 1 examples" in out
    assert "warning: contamination: clean" not in out
    assert roots == [("val", tmp_path / "data")]
    copied, clean = callback.reports
    assert (copied.hit_examples, copied.contained_examples) == (1, 1)
    assert clean.hit_examples == 0
    saved = json.loads((tmp_path / "contamination.json").read_text())
    assert saved == [copied.to_dict(), clean.to_dict()]
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_callback_validates_its_arguments():
    from nlp_lstm.training.contamination_callback import ContaminationCheck

    with pytest.raises(ValueError, match="warn_above"):
        ContaminationCheck({}, warn_above=1.5)
    with pytest.raises(ValueError, match="needs a 'source'"):
        ContaminationCheck({"dev": {"split": "val"}})
    with pytest.raises(ValueError, match="n must be"):
        ContaminationCheck({}, n=0)
    with pytest.raises(ValueError, match="threshold must be"):
        ContaminationCheck({}, threshold=0.0)
