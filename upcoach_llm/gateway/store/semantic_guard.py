"""The semantic cache's guard against its known failure: close embeddings, opposite meanings.

Sentence embeddings place "a tip for feeling confident" and "a tip for not feeling confident"
very close (MiniLM: about 0.9), above any useful threshold. So a stored request may answer a new
one only when both also agree on what embeddings blur:

- negation: both negated or neither ("not", "no", "never", "n't", "without", ...);
- opposite words: for each antonym group, the sides each text uses must be equal
  ("more" vs "less", "start" vs "stop", "morning" vs "night", "confident" vs "insecure");
- numbers: the same numbers, in digits or words, wherever they are written ("a 5 minute
  routine" is not "a 30 minute routine", "at 7am" is not "at 9pm", "ten minutes" is not
  "thirty minutes").

Words are compared lower-cased with a crude plural/-ing/-ed strip, so "habits" meets "habit";
typographic apostrophes (a phone keyboard's "don’t") read as "'", and "dont" as "don't".
The lists are measured on tests/upcoach_llm/gateway/store/semantic_set.yaml.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from upcoach_llm.gateway.store.semantic_text import plain_apostrophes

# Letters and digits apart: "7am" is "7" and "am", "5mins" is "5" and "mins".
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?|\d+(?:[.:]\d+)?")
_NEGATIONS = frozenset({"not", "no", "never", "nothing", "none", "nobody", "nowhere", "neither",
                        "nor", "without", "cannot", "unable",
                        # n't without its apostrophe, as people type it
                        "dont", "doesnt", "didnt", "isnt", "arent", "wasnt", "werent", "cant",
                        "couldnt", "wont", "wouldnt", "shouldnt", "havent", "hasnt", "hadnt",
                        "mustnt", "neednt", "aint"})
# Number words as digits ("one" is left out: "one tip" is "a tip").
_UNITS = ("zero", "", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
          "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
          "eighteen", "nineteen", "twenty")
_NUMBER_WORDS = {word: str(value) for value, word in enumerate(_UNITS) if word} | {
    "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70",
    "eighty": "80", "ninety": "90", "hundred": "100", "thousand": "1000", "half": "0.5",
    "dozen": "12"}
# Words that turn an action around when present on one side only ("check my email" /
# "stop checking my email", "sleep more" / "sleep less").
_REVERSALS = frozenset({"stop", "quit", "skip", "avoid", "less", "fewer", "reduce", "decrease",
                        "cut", "lose", "break", "end"})
# Prefixes that reverse the word they are on: "lock" / "unlock", "like" / "dislike".
_PREFIXES = ("un", "dis")

# Each group: words of one side, then words of the other.
_OPPOSITES: tuple[tuple[frozenset[str], frozenset[str]], ...] = tuple(
    (frozenset(a.split()), frozenset(b.split())) for a, b in (
        ("more increase boost higher extra gain add", "less fewer decrease reduce lower lose"),
        ("start begin build", "stop quit break end"),
        ("morning sunrise am", "evening night bedtime pm"),
        ("early earlier", "late later"),
        ("before", "after"),
        ("confident confidence", "insecure insecurity doubt"),
        ("happy happier joy joyful", "sad sadder unhappy"),
        ("calm relax relaxed", "anxious anxiety stress stressed"),
        ("strong strength", "weak weakness"),
        ("success succeed win", "fail failure lost"),
        ("love", "hate"),
        ("long longer", "short shorter brief"),
        ("up", "down"),
        ("on", "off"),
        ("in", "out"),
        ("fast faster", "slow slower"),
        ("sit", "stand"),
        ("weekday workday", "weekend"),
        ("myself", "others"),
        ("mom mother mum", "dad father"),
        ("son", "daughter"),
        ("brother", "sister"),
        ("husband boyfriend", "wife girlfriend"),
        ("with", "without"),
        ("hot warm", "cold"),
    ))


def _stem(word: str) -> str:
    """A crude stem: plural, -ing and -ed and a final e dropped ("loving" and "love": "lov")."""
    if word.endswith("n't"):
        return "not"
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            word = word[: -len(suffix)]
            break
    return word[:-1] if len(word) > 3 and word.endswith("e") else word


def _stems(words: frozenset[str] | list[str]) -> frozenset[str]:
    """The words and their stems (a listed "weakness" meets a written "weaknesses")."""
    return frozenset(words) | frozenset(_stem(w) for w in words)


_NEGATION_STEMS = _stems(_NEGATIONS)
_REVERSAL_STEMS = _stems(_REVERSALS)
_OPPOSITE_STEMS = tuple((_stems(a), _stems(b)) for a, b in _OPPOSITES)


@dataclass(frozen=True)
class Polarity:
    """What of a text's meaning the embedding may blur."""

    negated: bool  # a negation word
    reversed: bool  # a word that turns the action around
    sides: tuple[int, ...]  # per opposite group: 0 none, 1 first side, 2 second, 3 both
    numbers: frozenset[str]
    prefixed: frozenset[str]  # stems of un-/dis- words, without the prefix
    stems: frozenset[str]

    @classmethod
    def of(cls, text: str) -> Polarity:
        raw = _WORD.findall(plain_apostrophes(text.lower()))
        stems = _stems(raw)
        sides = tuple((1 if stems & a else 0) | (2 if stems & b else 0)
                      for a, b in _OPPOSITE_STEMS)
        prefixed = frozenset(_stem(w[len(p):]) for w in raw for p in _PREFIXES
                             if w.startswith(p) and len(w) > len(p) + 3)
        return cls(negated=bool(stems & _NEGATION_STEMS),
                   reversed=bool(stems & _REVERSAL_STEMS), sides=sides,
                   numbers=frozenset(_NUMBER_WORDS.get(w, w) for w in raw
                                     if w[0].isdigit() or w in _NUMBER_WORDS),
                   prefixed=prefixed,
                   stems=stems)


def agree(a: Polarity, b: Polarity) -> bool:
    """Whether two texts agree on negation, reversal, opposite words, prefixes and numbers.

    Negation, reversal and numbers must match exactly. An opposite group conflicts only when
    both texts use it differently ("morning" / "night"); one text alone naming a side ("a tip to
    exercise in the morning" / "a tip to exercise") is left to the similarity.
    """
    if a.negated != b.negated or a.reversed != b.reversed or a.numbers != b.numbers:
        return False
    if any(x and y and x != y for x, y in zip(a.sides, b.sides, strict=True)):
        return False
    return not (a.prefixed & (b.stems - b.prefixed) or b.prefixed & (a.stems - a.prefixed))
