"""A synthetic parallel corpus, English to a small German-like language, that needs word
reordering and agreement.

English sentences come from a small grammar; the target is produced from the same parse by
German's rules, regularized where German is irregular (no contractions such as "im", "nicht"
always ends the middle field, every perfect takes "haben"). What a model must learn:

- **Verb placement.** Main clauses are verb-second: a fronted adverb or a fronted subordinate
  clause puts the finite verb before the subject ("Today the dog sees the cat" -> "Heute sieht
  der Hund die Katze"). Subordinate clauses are verb-final ("because the dog sees the cat" ->
  "weil der Hund die Katze sieht"). Participles and infinitives go to the end of the clause
  ("has seen the cat" -> "hat die Katze gesehen"), and so does "nicht" before them.
- **Agreement.** Nouns have a gender that English does not show. Articles depend on gender,
  number and case (subject nominative, object accusative, after a preposition dative: "the dog"
  is "der Hund", "den Hund" or "dem Hund"); adjective endings depend on the determiner, gender,
  number and case ("a big dog" -> "ein großer Hund", "a big house" -> "ein großes Haus");
  dative plural nouns take -n; the verb agrees in number with the subject.
- **Many-to-one and one-to-many words.** "does not see" -> "sieht ... nicht", "looks for" ->
  "sucht", "next to" -> "neben", "not ... a cat" -> "keine Katze", "a" / "an".

About 275 English and 375 target word forms (20,000 pairs); sentences have 5 to 20 tokens
(words and punctuation), 13 on average. The translation is a function of the English sentence.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

from nlp_lstm.data.generated import GeneratedCorpus, draw_distinct

# ------------------------------------------------------------------------------- lexicon
# Nouns: (English singular, English plural, German singular, German plural, gender).
ANIMATES = (
    ("dog", "dogs", "Hund", "Hunde", "m"), ("cat", "cats", "Katze", "Katzen", "f"),
    ("horse", "horses", "Pferd", "Pferde", "n"), ("bird", "birds", "Vogel", "Vögel", "m"),
    ("child", "children", "Kind", "Kinder", "n"), ("man", "men", "Mann", "Männer", "m"),
    ("woman", "women", "Frau", "Frauen", "f"), ("girl", "girls", "Mädchen", "Mädchen", "n"),
    ("teacher", "teachers", "Lehrer", "Lehrer", "m"), ("cook", "cooks", "Koch", "Köche", "m"),
    ("mouse", "mice", "Maus", "Mäuse", "f"), ("cow", "cows", "Kuh", "Kühe", "f"),
    ("pig", "pigs", "Schwein", "Schweine", "n"),
    ("sister", "sisters", "Schwester", "Schwestern", "f"),
    ("brother", "brothers", "Bruder", "Brüder", "m"),
    ("friend", "friends", "Freund", "Freunde", "m"),
    ("queen", "queens", "Königin", "Königinnen", "f"), ("king", "kings", "König", "Könige", "m"),
    ("baby", "babies", "Baby", "Babys", "n"), ("wolf", "wolves", "Wolf", "Wölfe", "m"),
    ("duck", "ducks", "Ente", "Enten", "f"), ("lamb", "lambs", "Lamm", "Lämmer", "n"),
)
THINGS = (
    ("ball", "balls", "Ball", "Bälle", "m"), ("book", "books", "Buch", "Bücher", "n"),
    ("apple", "apples", "Apfel", "Äpfel", "m"), ("car", "cars", "Auto", "Autos", "n"),
    ("letter", "letters", "Brief", "Briefe", "m"), ("cup", "cups", "Tasse", "Tassen", "f"),
    ("door", "doors", "Tür", "Türen", "f"), ("table", "tables", "Tisch", "Tische", "m"),
    ("chair", "chairs", "Stuhl", "Stühle", "m"), ("flower", "flowers", "Blume", "Blumen", "f"),
    ("cake", "cakes", "Kuchen", "Kuchen", "m"), ("key", "keys", "Schlüssel", "Schlüssel", "m"),
    ("picture", "pictures", "Bild", "Bilder", "n"),
    ("window", "windows", "Fenster", "Fenster", "n"),
    ("song", "songs", "Lied", "Lieder", "n"), ("bag", "bags", "Tasche", "Taschen", "f"),
    ("lamp", "lamps", "Lampe", "Lampen", "f"), ("bottle", "bottles", "Flasche", "Flaschen", "f"),
    ("egg", "eggs", "Ei", "Eier", "n"), ("boat", "boats", "Boot", "Boote", "n"),
    ("hat", "hats", "Hut", "Hüte", "m"),
)
PLACES = (
    ("garden", "gardens", "Garten", "Gärten", "m"), ("house", "houses", "Haus", "Häuser", "n"),
    ("park", "parks", "Park", "Parks", "m"), ("street", "streets", "Straße", "Straßen", "f"),
    ("kitchen", "kitchens", "Küche", "Küchen", "f"), ("forest", "forests", "Wald", "Wälder", "m"),
    ("school", "schools", "Schule", "Schulen", "f"), ("river", "rivers", "Fluss", "Flüsse", "m"),
    ("city", "cities", "Stadt", "Städte", "f"), ("field", "fields", "Feld", "Felder", "n"),
    ("lake", "lakes", "See", "Seen", "m"), ("room", "rooms", "Zimmer", "Zimmer", "n"),
)
FOOD = ("apple", "cake", "egg")
TEXTS = ("book", "letter")
ADJECTIVES = (
    ("big", "groß"), ("small", "klein"), ("old", "alt"), ("young", "jung"), ("red", "rot"),
    ("black", "schwarz"), ("white", "weiß"), ("green", "grün"), ("happy", "glücklich"),
    ("sad", "traurig"), ("new", "neu"), ("beautiful", "schön"), ("fast", "schnell"),
    ("tired", "müde"), ("hungry", "hungrig"), ("clever", "klug"), ("brown", "braun"),
    ("strange", "seltsam"), ("friendly", "freundlich"), ("heavy", "schwer"), ("blue", "blau"),
    ("yellow", "gelb"), ("cold", "kalt"), ("quiet", "leise"),
)
# Verbs: (English 3sg, base, participle), (German 3sg, 3pl = infinitive, participle), objects.
TRANSITIVE = (
    (("sees", "see", "seen"), ("sieht", "sehen", "gesehen"), "any"),
    (("eats", "eat", "eaten"), ("isst", "essen", "gegessen"), "food"),
    (("finds", "find", "found"), ("findet", "finden", "gefunden"), "any"),
    (("likes", "like", "liked"), ("mag", "mögen", "gemocht"), "any"),
    (("loves", "love", "loved"), ("liebt", "lieben", "geliebt"), "any"),
    (("hears", "hear", "heard"), ("hört", "hören", "gehört"), "animate"),
    (("follows", "follow", "followed"), ("verfolgt", "verfolgen", "verfolgt"), "animate"),
    (("carries", "carry", "carried"), ("trägt", "tragen", "getragen"), "any"),
    (("holds", "hold", "held"), ("hält", "halten", "gehalten"), "any"),
    (("reads", "read", "read"), ("liest", "lesen", "gelesen"), "text"),
    (("buys", "buy", "bought"), ("kauft", "kaufen", "gekauft"), "thing"),
    (("paints", "paint", "painted"), ("malt", "malen", "gemalt"), "any"),
    (("washes", "wash", "washed"), ("wäscht", "waschen", "gewaschen"), "any"),
    (("opens", "open", "opened"), ("öffnet", "öffnen", "geöffnet"), "thing"),
    (("visits", "visit", "visited"), ("besucht", "besuchen", "besucht"), "animate"),
    (("catches", "catch", "caught"), ("fängt", "fangen", "gefangen"), "any"),
    (("draws", "draw", "drawn"), ("zeichnet", "zeichnen", "gezeichnet"), "any"),
    (("looks for", "look for", "looked for"), ("sucht", "suchen", "gesucht"), "any"),
    (("calls", "call", "called"), ("ruft", "rufen", "gerufen"), "animate"),
    (("brings", "bring", "brought"), ("bringt", "bringen", "gebracht"), "thing"),
    (("watches", "watch", "watched"), ("beobachtet", "beobachten", "beobachtet"), "any"),
    (("needs", "need", "needed"), ("braucht", "brauchen", "gebraucht"), "thing"),
)
INTRANSITIVE = (
    (("sleeps", "sleep", "slept"), ("schläft", "schlafen", "geschlafen")),
    (("laughs", "laugh", "laughed"), ("lacht", "lachen", "gelacht")),
    (("plays", "play", "played"), ("spielt", "spielen", "gespielt")),
    (("works", "work", "worked"), ("arbeitet", "arbeiten", "gearbeitet")),
    (("waits", "wait", "waited"), ("wartet", "warten", "gewartet")),
    (("sings", "sing", "sung"), ("singt", "singen", "gesungen")),
    (("dances", "dance", "danced"), ("tanzt", "tanzen", "getanzt")),
    (("cries", "cry", "cried"), ("weint", "weinen", "geweint")),
    (("dreams", "dream", "dreamed"), ("träumt", "träumen", "geträumt")),
)
# (English 3sg, base), (German 3sg, 3pl); the main verb follows as infinitive.
MODALS = ((("will", "will"), ("wird", "werden")), (("can", "can"), ("kann", "können")),
          (("must", "must"), ("muss", "müssen")))
HAVE = (("has", "have"), ("hat", "haben"))
SAYING = ((("says", "say"), ("sagt", "sagen")), (("thinks", "think"), ("denkt", "denken")),
          (("knows", "know"), ("weiß", "wissen")), (("believes", "believe"), ("glaubt", "glauben")))
ADVERBS = (("today", "heute"), ("now", "jetzt"), ("often", "oft"), ("sometimes", "manchmal"),
           ("suddenly", "plötzlich"), ("usually", "meistens"), ("later", "später"))
CONJUNCTIONS = (("because", "weil"), ("when", "wenn"), ("although", "obwohl"), ("if", "falls"),
                ("while", "während"), ("before", "bevor"), ("after", "nachdem"))
PREPOSITIONS = (("in", "in"), ("behind", "hinter"), ("under", "unter"), ("next to", "neben"),
                ("near", "bei"))

# ---------------------------------------------------------------------------- morphology
# Keys: gender or "pl", then case (nom, acc, dat).
_DER = {"m": ("der", "den", "dem"), "f": ("die", "die", "der"), "n": ("das", "das", "dem"),
        "pl": ("die", "die", "den")}
_DIES_ENDINGS = {"m": ("er", "en", "em"), "f": ("e", "e", "er"), "n": ("es", "es", "em"),
                 "pl": ("e", "e", "en")}
_EIN_ENDINGS = {"m": ("", "en", "em"), "f": ("e", "e", "er"), "n": ("", "", "em"),
                "pl": ("e", "e", "en")}
# Adjective endings after der-words (weak) and after ein-words (mixed).
_WEAK = {"m": ("e", "en", "en"), "f": ("e", "e", "en"), "n": ("e", "e", "en"),
         "pl": ("en", "en", "en")}
_MIXED = {"m": ("er", "en", "en"), "f": ("e", "e", "en"), "n": ("es", "es", "en"),
          "pl": ("en", "en", "en")}
CASES = ("nom", "acc", "dat")
# English determiner (singular, plural) -> German stem and declension; "a" has no plural.
DETERMINERS = {"the": ("the", "the", "der"), "a": ("a", None, "ein"), "my": ("my", "my", "mein"),
               "this": ("this", "these", "dies")}


def _suffix(stem: str, ending: str) -> str:
    """``müde`` + ``er`` is ``müder``: no doubled e."""
    return stem + (ending[1:] if stem.endswith("e") and ending.startswith("e") else ending)


def determiner_form(det: str, key: str, case: str) -> str:
    """The German form of an English determiner (``the``, ``a``, ``my``, ``this``, or the
    ``no`` that negation turns "a" into) for a gender/number key and a case."""
    c = CASES.index(case)
    if det == "the":
        return _DER[key][c]
    if det == "this":
        return "dies" + _DIES_ENDINGS[key][c]
    stem = {"a": "ein", "my": "mein", "no": "kein"}[det]
    return stem + _EIN_ENDINGS[key][c]


def adjective_form(stem: str, det: str, key: str, case: str) -> str:
    """German adjective after a determiner: weak after der-words, mixed after ein-words."""
    table = _WEAK if det in ("the", "this") else _MIXED
    return _suffix(stem, table[key][CASES.index(case)])


# -------------------------------------------------------------------------------- grammar
@dataclass(frozen=True)
class NounPhrase:
    noun: tuple[str, str, str, str, str]
    plural: bool
    det: str  # a key of DETERMINERS, or "no" (negated "a")
    adjectives: tuple[tuple[str, str], ...]

    def english(self) -> str:
        sg, pl, det_pl = self.noun[0], self.noun[1], DETERMINERS[self.det][1]
        det = det_pl if self.plural else DETERMINERS[self.det][0]
        words = [a for a, _ in self.adjectives] + [pl if self.plural else sg]
        if det == "a" and words[0][0] in "aeiou":
            det = "an"
        return " ".join([det, *words])

    def german(self, case: str) -> str:
        key = "pl" if self.plural else self.noun[4]
        noun = self.noun[3] if self.plural else self.noun[2]
        if self.plural and case == "dat" and not noun.endswith(("n", "s")):
            noun += "n"  # dative plural: den Hunden, den Kindern
        adjectives = [adjective_form(de, self.det, key, case) for _, de in self.adjectives]
        return " ".join([determiner_form(self.det, key, case), *adjectives, noun])


@dataclass(frozen=True)
class Clause:
    """One clause; ``form`` is present, perfect or modal, ``negated`` adds not/nicht."""

    subject: NounPhrase
    verb: tuple  # an entry of TRANSITIVE or INTRANSITIVE
    obj: NounPhrase | None
    pp: tuple[tuple[str, str], NounPhrase] | None
    form: str
    modal: tuple | None
    negated: bool

    def english(self) -> str:
        (v3, vbase, vpart), n = self.verb[0], int(self.subject.plural)
        if self.form == "present":
            verb = f"{('does', 'do')[n]} not {vbase}" if self.negated else (v3, vbase)[n]
        elif self.form == "perfect":
            verb = f"{HAVE[0][n]}{' not' * self.negated} {vpart}"
        else:
            modal = self.modal[0][n]
            neg = ("cannot" if modal == "can" else f"{modal} not") if self.negated else modal
            verb = f"{neg} {vbase}"
        words = [self.subject.english(), verb]
        if self.obj is not None:
            words.append(self.obj.english())
        if self.pp is not None:
            words.append(f"{self.pp[0][0]} {self.pp[1].english()}")
        return " ".join(words)

    def german(self, order: str) -> str:
        """``order``: ``main`` (subject first), ``inverted`` (verb first: after a fronted
        element) or ``sub`` (verb last)."""
        (g3, gpl, gpart), n = self.verb[1], int(self.subject.plural)
        nicht = self.negated
        obj = self.obj
        if nicht and obj is not None and obj.det == "a":
            obj, nicht = NounPhrase(obj.noun, obj.plural, "no", obj.adjectives), False
        if self.form == "present":
            finite, rest = (g3, gpl)[n], []
        elif self.form == "perfect":
            finite, rest = HAVE[1][n], [gpart]
        else:
            finite, rest = self.modal[1][n], [gpl]
        middle = ([obj.german("acc")] if obj is not None else [])
        if self.pp is not None:
            middle.append(f"{self.pp[0][1]} {self.pp[1].german('dat')}")
        middle += ["nicht"] * nicht + rest
        subject = self.subject.german("nom")
        if order == "main":
            words = [subject, finite, *middle]
        elif order == "inverted":
            words = [finite, subject, *middle]
        else:
            words = [subject, *middle, finite]
        return " ".join(words)


def _noun_phrase(rng: random.Random, nouns: tuple, *, allow_plural: bool = True) -> NounPhrase:
    noun = rng.choice(nouns)
    plural = allow_plural and rng.random() < 0.35
    dets = ("the", "the", "my", "this") if plural else ("the", "the", "a", "a", "my", "this")
    r = rng.random()
    n_adj = 0 if r < 0.45 else 1 if r < 0.9 else 2
    adjectives = tuple(rng.sample(ADJECTIVES, n_adj))
    return NounPhrase(noun, plural, rng.choice(dets), adjectives)


def _objects(kind: str) -> tuple:
    if kind == "food":
        return tuple(n for n in THINGS if n[0] in FOOD)
    if kind == "text":
        return tuple(n for n in THINGS if n[0] in TEXTS)
    return {"any": ANIMATES + THINGS, "animate": ANIMATES, "thing": THINGS}[kind]


def _clause(rng: random.Random) -> Clause:
    subject = _noun_phrase(rng, ANIMATES)
    if rng.random() < 0.7:
        verb = rng.choice(TRANSITIVE)
        obj = _noun_phrase(rng, _objects(verb[2]))
    else:
        verb, obj = rng.choice(INTRANSITIVE), None
    pp = None
    if rng.random() < 0.3:
        prep = rng.choice(PREPOSITIONS)
        pp = (prep, _noun_phrase(rng, PLACES, allow_plural=False))
    elif rng.random() < 0.1:
        pp = (("with", "mit"), _noun_phrase(rng, ANIMATES))
    form = rng.choices(("present", "perfect", "modal"), (0.5, 0.2, 0.3))[0]
    modal = rng.choice(MODALS) if form == "modal" else None
    return Clause(subject, verb, obj, pp, form, modal, rng.random() < 0.25)


TEMPLATES = ("simple", "adverb", "sub_after", "sub_first", "that")
TEMPLATE_WEIGHTS = (0.2, 0.15, 0.25, 0.2, 0.2)


@dataclass(frozen=True)
class Pair:
    source: str
    target: str
    template: str


def _capitalize(text: str) -> str:
    return text[0].upper() + text[1:]


def _pair(rng: random.Random) -> Pair:
    template = rng.choices(TEMPLATES, TEMPLATE_WEIGHTS)[0]
    main = _clause(rng)
    if template == "simple":
        en, de = main.english(), main.german("main")
    elif template == "adverb":
        adverb = rng.choice(ADVERBS)
        en, de = f"{adverb[0]} {main.english()}", f"{adverb[1]} {main.german('inverted')}"
    elif template in ("sub_after", "sub_first"):
        conj, sub = rng.choice(CONJUNCTIONS), _clause(rng)
        en_sub, de_sub = f"{conj[0]} {sub.english()}", f"{conj[1]} {sub.german('sub')}"
        if template == "sub_after":
            en, de = f"{main.english()} {en_sub}", f"{main.german('main')}, {de_sub}"
        else:  # the fronted clause takes the first place: the main verb comes next
            en, de = f"{en_sub}, {main.english()}", f"{de_sub}, {main.german('inverted')}"
    else:
        subject, (say_en, say_de) = _noun_phrase(rng, ANIMATES), rng.choice(SAYING)
        n = int(subject.plural)
        en = f"{subject.english()} {say_en[n]} that {main.english()}"
        de = f"{subject.german('nom')} {say_de[n]}, dass {main.german('sub')}"
    return Pair(_capitalize(en) + ".", _capitalize(de) + ".", template)


MIN_TOKENS, MAX_TOKENS = 5, 20
_TOKEN = re.compile(r"\w+|[^\w\s]")


def count_words(text: str) -> int:
    """Words and punctuation marks, as the word-level tokenizer splits them."""
    return len(_TOKEN.findall(text))


def generate_translation(num_examples: int, seed: int = 0) -> list[Pair]:
    """``num_examples`` pairs with distinct English sides of 5 to 20 tokens, deterministic in
    ``seed``; tokens are words and punctuation marks (``count_words``)."""

    def key(pair: Pair) -> str | None:  # distinct after lowercasing: no split leaks
        fits = MIN_TOKENS <= count_words(pair.source) <= MAX_TOKENS
        return pair.source.lower() if fits else None

    return draw_distinct(_pair, key, num_examples, seed, "sentences")


class SyntheticTranslation(GeneratedCorpus[Pair]):
    """The embedded parallel corpus as a data source: train/val/test splits (80/10/10) of
    distinct sentence pairs.

    Args:
        num_examples: total size.
        seed: the generator's seed; the same seed gives the same corpus on every machine.
    """

    src_lang: str = "en"
    tgt_lang: str = "de-synthetic"
    name = "synthetic-translation"

    def __init__(self, num_examples: int = 20_000, seed: int = 0) -> None:
        super().__init__(num_examples, seed)

    def generate(self) -> list[Pair]:
        return generate_translation(self.size, self.seed)

    def load(self, split: str, root: Path | None = None,
             on_error: str = "raise") -> tuple[list[tuple[str, str]], int]:
        """The (source, target) pairs of one split, and 0 skipped."""
        return [(p.source, p.target) for p in self.items(split)], 0
