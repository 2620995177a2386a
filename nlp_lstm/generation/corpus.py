"""A synthetic text corpus for language modelling whose stories need memory to predict.

Each document is a short story from a small grammar::

    Kira found a gold flute in the attic.
    There were three errands that day:
    1. mend the red key
    2. wash the white cup
    3. hide the grey bell
    A note said (go [north {well}]).
    In the end, Kira put the gold flute back in the attic.

Most of a story is local and easy (fixed phrases, an errand list), but four kinds of tokens
are fixed by something far back, where no short context can see it:

- the closing line repeats the opening's name, color, item and place about 150-250 characters
  later; the errands in between name *other* colors and items (distractors), so "copy the most
  recent color" fails and only a memory of the opening succeeds;
- the errand list has exactly the number of items the second line declares in words, so
  whether a line starts with the next number or with "A note"/"In the end" depends on that
  declaration and on counting;
- the note's brackets are nested up to three deep with mixed kinds, and close in reverse order.

Names have distinct initials, so the closing name's first character alone identifies the
opening's name: the test suite measures that a 10-character n-gram predicts it at chance while
copying from the opening is always right. Everything is generated from ``seed``: no files.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from nlp_lstm.data.generated import GeneratedCorpus, draw_distinct

# Distinct initials: the first character of the closing name is determined by the opening.
NAMES = (
    "Ada", "Bram", "Cleo", "Dov", "Edda", "Finn", "Greta", "Hugo", "Ines", "Jonas", "Kira",
    "Lars", "Mona", "Nils", "Olga", "Piet", "Rosa", "Sven", "Tilda", "Uwe", "Vera", "Wim",
    "Yara", "Zeno",
)
COLORS = ("red", "blue", "green", "black", "white", "grey", "gold", "brown")
ITEMS = ("lamp", "key", "rope", "map", "coin", "bell", "knife", "book", "cup", "flute", "ring",
         "box")
PLACES = ("cellar", "barn", "attic", "garden", "kitchen", "shed", "hall", "mill", "loft", "yard")
FOUND = ("found", "saw", "took", "lost")
COUNTS = ("two", "three", "four", "five")  # the list then has 2, 3, 4 or 5 items
VERBS = ("fetch", "mend", "wash", "hide", "sell", "paint", "find", "polish", "bury", "count")
BRACKETS = ("()", "[]", "{}")
NOTE_WORDS = ("go", "north", "south", "well", "gate", "left", "right", "home", "bridge", "now",
              "wait", "run", "stop", "hill", "river", "door")
NOTE_PROBABILITY = 0.8
VERSION = 1  # part of the fingerprint: bump when the generator changes


@dataclass(frozen=True)
class Story:
    """One document and the facts the grammar put in it (for tests and analysis)."""

    text: str
    name: str
    color: str
    item: str
    place: str
    errands: int

    def probe_spans(self) -> list[tuple[int, int]]:
        """The character spans ``(start, stop)`` in ``text`` of the closing line's name, color,
        item and place: the tokens only a memory of the opening predicts."""
        closing = self.text.rindex("\n") + 1
        spans, at = [], closing
        for word in (self.name, self.color, self.item, self.place):
            start = self.text.index(f" {word}", at) + 1
            spans.append((start, start + len(word)))
            at = start + len(word)
        return spans


def _nested(rng: random.Random, depth: int) -> str:
    """``depth`` levels of mixed brackets around words, e.g. ``(go [north {well}])``."""
    if depth == 0:
        return rng.choice(NOTE_WORDS)
    opening, closing = rng.choice(BRACKETS)
    return f"{opening}{rng.choice(NOTE_WORDS)} {_nested(rng, depth - 1)}{closing}"


def _story(rng: random.Random) -> Story:
    name, color, item, place = (rng.choice(NAMES), rng.choice(COLORS), rng.choice(ITEMS),
                                rng.choice(PLACES))
    count = rng.randrange(len(COUNTS))
    lines = [f"{name} {rng.choice(FOUND)} a {color} {item} in the {place}.",
             f"There were {COUNTS[count]} errands that day:"]
    # Distractors: errands never mention the key color or item.
    other_colors = [c for c in COLORS if c != color]
    other_items = [i for i in ITEMS if i != item]
    for number in range(1, count + 3):
        lines.append(f"{number}. {rng.choice(VERBS)} the {rng.choice(other_colors)} "
                     f"{rng.choice(other_items)}")
    if rng.random() < NOTE_PROBABILITY:
        lines.append(f"A note said {_nested(rng, rng.randint(1, 3))}.")
    lines.append(f"In the end, {name} put the {color} {item} back in the {place}.")
    return Story("\n".join(lines), name, color, item, place, count + 2)


def generate_stories(num_documents: int, seed: int = 0) -> list[Story]:
    """``num_documents`` distinct stories, deterministic in ``seed``."""
    # Distinct, so no story is in two splits.
    return draw_distinct(_story, lambda story: story.text, num_documents, seed, "stories")


class SyntheticText(GeneratedCorpus[Story]):
    """The embedded language-modelling corpus as a data source: stories split 80/10/10.

    Documents are stories (several lines each); a stream joins them with a blank line.

    Args:
        num_documents: total number of stories (about 230 characters each).
        seed: the generator's seed; the same seed gives the same corpus on every machine.
    """

    separator: str = "\n\n"
    name = f"synthetic-text-v{VERSION}"
    size_arg = "num_documents"

    def __init__(self, num_documents: int = 1500, seed: int = 0) -> None:
        super().__init__(num_documents, seed)

    def generate(self) -> list[Story]:
        return generate_stories(self.size, self.seed)

    def stories(self, split: str) -> list[Story]:
        """The stories of one split, with their facts."""
        return self.items(split)

    def probe_spans(self, split: str) -> list[list[tuple[int, int]]]:
        """Per document of ``load(split)``, the character spans of the probe
        (``Story.probe_spans``)."""
        return [story.probe_spans() for story in self.stories(split)]

    def load(self, split: str, root: Path | None = None,
             on_error: str = "raise") -> tuple[list[str], int]:
        """The story texts of one split, and 0 skipped."""
        return [story.text for story in self.stories(split)], 0
