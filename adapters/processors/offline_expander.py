"""The offline expander: deterministic prose that carries every key term of an outline.

This is what ``text-expansion`` does when no model endpoint is configured
(``INKSTREAM_LLM_BASE_URL`` empty): the default of a fresh install, of the
test suite and of the benchmarks. It is not a language model and never says
it is one; it writes a predictable draft so that the whole job pipeline works
offline. The same outline always gives the same text.

* Key terms are the outline's words (letters or digits, inner hyphens and
  apostrophes kept) that are not common English function words, in the order
  they first appear, each once (case-insensitively), in their original case.
* The text opens with the outline itself (so every term appears verbatim),
  then gives each key term a sentence of its own from a small set of
  templates (taken in turn from a place chosen by a hash of the outline, so
  the choice is stable), and closes by naming them all again.
"""

from __future__ import annotations

import hashlib
import re

_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her here
    hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off
    on once only or other our ours ourselves out over own same she should so some such than that the their theirs
    them themselves then there these they this those through to too under until up very was we were what when where
    which while who whom why will with would you your yours yourself yourselves""".split()
)

_TEMPLATES = (
    "Much of what follows turns on one word: {t}.",
    "{T} keeps returning, each time a little changed.",
    "Keep {t} in mind; it matters more than it first seems.",
    "The scene lingers on {t} before it moves on.",
    "Around {t}, the story gathers its weight.",
    "Nothing about {t} is as simple as it looks.",
    "Every later turn can be traced back to {t}.",
)


def key_terms(outline: str) -> list[str]:
    seen: set[str] = set()
    terms: list[str] = []
    for match in _WORD.finditer(outline):
        word = match.group(0)
        folded = word.casefold()
        if folded in seen or folded in STOPWORDS:
            continue
        if len(word) < 3 and not any(ch.isdigit() for ch in word):
            continue
        seen.add(folded)
        terms.append(word)
    return terms


def _first_template(outline: str) -> int:
    return int.from_bytes(hashlib.sha256(outline.encode()).digest()[:4], "big") % len(_TEMPLATES)


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def expand(outline: str, title: str | None = None) -> str:
    """The outline expanded into a few paragraphs; every key term appears in it."""
    sentences = [_sentence(s) for s in _SENTENCE_END.split(outline) if s.strip()]
    terms = key_terms(outline)
    paragraphs: list[str] = []
    opening = " ".join(sentences) if sentences else ""
    if title and title.strip():
        paragraphs.append(f"{title.strip()}.")
    if opening:
        paragraphs.append(f"It begins like this: {opening}")
    if terms:
        lines = []
        first = _first_template(outline)
        for i, term in enumerate(terms):
            template = _TEMPLATES[(first + i) % len(_TEMPLATES)]
            lines.append(template.format(t=term, T=term[0].upper() + term[1:]))
        paragraphs.append(" ".join(lines))
        if len(terms) > 1:
            named = ", ".join(terms[:-1]) + f" and {terms[-1]}"
            paragraphs.append(f"By the end, {named} have each found their place in the story.")
        else:
            paragraphs.append(f"By the end, {terms[0]} has found its place in the story.")
    return "\n\n".join(paragraphs)
