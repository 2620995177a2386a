"""A synthetic sentiment corpus whose labels depend on word order.

Short review-like sentences come from a small grammar. A clause is
``SUBJECT VERB [NEGATOR] [INTENSIFIER] ADJECTIVE``; its polarity is the adjective's, flipped by a
negator ("not good" is negative, "never boring" positive). Intensifiers change nothing. Sentences
combine clauses so that the label follows the clause that *governs* the sentence:

- ``plain``:      one clause (possibly negated).
- ``and``:        two clauses of the same polarity joined by "and".
- ``but``:        "A, but B": B decides.
- ``arc``:        "SUBJ was A at first, but B in the end": B decides.
- ``although``:   "although A, B" or "B, although A": the clause *without* "although" decides,
                  whether it comes first or last (scope).

In every two-clause contrast the two clauses have opposite polarities and each order is equally
likely, so the bag of words of a sentence says nothing about its label: only a model that reads
order (which adjective follows "but", which clause "although" governs, what "not" attaches to)
can exceed chance on them. Labels are exact: there is no label noise.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from nlp_lstm.data.generated import GeneratedCorpus, draw_distinct

LABELS = ("negative", "positive")

SUBJECTS = (
    "the movie", "this film", "the story", "the plot", "the acting", "the cast", "the script",
    "the ending", "the soundtrack", "the dialogue", "the direction", "the pacing",
    "the lead performance", "the cinematography", "this sequel", "the humor",
)
VERBS = ("was", "is", "felt", "seemed", "looked", "turned out")
POSITIVE = (
    "good", "great", "brilliant", "wonderful", "moving", "charming", "clever", "delightful",
    "gripping", "superb", "fun", "beautiful", "touching", "sharp", "fresh", "engaging",
)
NEGATIVE = (
    "bad", "dull", "boring", "awful", "terrible", "bland", "clumsy", "tedious", "predictable",
    "weak", "messy", "painful", "flat", "lifeless", "forgettable", "shallow",
)
NEGATORS = ("not", "never", "hardly", "not at all")
INTENSIFIERS = ("very", "really", "truly", "quite", "remarkably", "so", "utterly", "rather")
NEGATED_INTENSIFIERS = ("very", "really", "that", "particularly", "especially")  # "not that good"
OPENERS = ("", "", "", "", "honestly, ", "overall, ", "i think ", "in my opinion, ", "frankly, ")
PRONOUNS = ("it", "the film", "the whole thing")
TEMPLATES = ("plain", "and", "but", "arc", "although")
# Contrasts dominate: they are where order matters.
TEMPLATE_WEIGHTS = (0.2, 0.1, 0.25, 0.2, 0.25)


@dataclass(frozen=True)
class Example:
    text: str
    label: int  # index into LABELS
    template: str


def _adjective_phrase(rng: random.Random, polarity: int) -> str:
    """An adjective phrase of the given polarity (1 positive, 0 negative), maybe negated."""
    negated = rng.random() < 0.4
    adjective_polarity = 1 - polarity if negated else polarity
    adjective = rng.choice(POSITIVE if adjective_polarity else NEGATIVE)
    if not negated:
        intensifier = rng.choice(INTENSIFIERS) if rng.random() < 0.35 else ""
        return f"{intensifier} {adjective}".lstrip()
    negator = rng.choice(NEGATORS)
    if negator == "not at all":
        return f"not {adjective} at all"
    intensifier = rng.choice(NEGATED_INTENSIFIERS) if rng.random() < 0.35 else ""
    return " ".join(w for w in (negator, intensifier, adjective) if w)


def _clause(rng: random.Random, polarity: int, subject: str | None = None) -> str:
    subject = subject or rng.choice(SUBJECTS)
    return f"{subject} {rng.choice(VERBS)} {_adjective_phrase(rng, polarity)}"


def _sentence(rng: random.Random) -> Example:
    template = rng.choices(TEMPLATES, TEMPLATE_WEIGHTS)[0]
    label = rng.randrange(2)
    if template == "plain":
        body = _clause(rng, label)
    elif template == "and":
        body = f"{_clause(rng, label)} and {_clause(rng, label)}"
    elif template == "but":
        first = _clause(rng, 1 - label)
        second = _clause(rng, label, subject=rng.choice((None, *PRONOUNS)))
        body = f"{first}, but {second}"
    elif template == "arc":
        subject, verb = rng.choice(SUBJECTS), rng.choice(VERBS)
        first, last = _adjective_phrase(rng, 1 - label), _adjective_phrase(rng, label)
        body = f"{subject} {verb} {first} at first, but {last} in the end"
    else:  # although: the governing clause may come first or last
        governing, conceded = _clause(rng, label), _clause(rng, 1 - label)
        if rng.random() < 0.5:
            body = f"although {conceded}, {governing}"
        else:
            body = f"{governing}, although {conceded}"
    text = rng.choice(OPENERS) + body
    text = text[0].upper() + text[1:] + rng.choice((".", ".", ".", "!"))
    return Example(text, label, template)


def generate_sentiment(num_examples: int, seed: int = 0) -> list[Example]:
    """``num_examples`` distinct sentences, deterministic in ``seed``."""
    # Distinct after lowercasing: no split leaks.
    return draw_distinct(_sentence, lambda e: e.text.lower(), num_examples, seed, "sentences")


class SyntheticSentiment(GeneratedCorpus[Example]):
    """The embedded corpus as a data source: train/val/test splits of distinct sentences.

    Args:
        num_examples: total size; split 80/10/10.
        seed: the generator's seed; the same seed gives the same corpus on every machine.
    """

    labels: tuple[str, ...] = LABELS
    name = "synthetic-sentiment"

    def __init__(self, num_examples: int = 10_000, seed: int = 0) -> None:
        super().__init__(num_examples, seed)

    def generate(self) -> list[Example]:
        return generate_sentiment(self.size, self.seed)

    def load(self, split: str, root: Path | None = None,
             on_error: str = "raise") -> tuple[list[tuple[str, int]], int]:
        """The (text, label index) pairs of one split, and 0 skipped."""
        return [(e.text, e.label) for e in self.items(split)], 0
