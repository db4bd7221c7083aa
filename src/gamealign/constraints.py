"""Verifiable instruction constraints: how a prompt states them and how a response is checked.

Each constraint is a small dict, e.g. {"type": "max_words", "n": 40}; `describe` renders the
instruction text, `satisfied` checks a response. The prompt generator and the panel judge share them.
"""

from __future__ import annotations

import json
import re

# a word: letters and digits, with apostrophes only inside it ("don't", "Earth's" are one word each), so a word
# written in single quotes — "Include the word 'river'." answered "The word 'river' ..." — is the word itself
# (until 2026-12-07 the quotes stuck to it: bench/ifeval_checkers.py found it against Google's IFEval checkers)
_WORD = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z0-9]+)*")
_SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def n_sentences(text: str) -> int:
    return len(_SENTENCE_END.findall(text.strip())) or (1 if text.strip() else 0)


def bullets(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if re.match(r"^\s*[-*•]\s+\S", ln)]


def describe(c: dict) -> str:
    t = c["type"]
    if t == "max_words":
        return f"Answer in at most {c['n']} words."
    if t == "min_words":
        return f"Use at least {c['n']} words."
    if t == "max_sentences":
        return f"Use no more than {c['n']} sentences."
    if t == "bullets":
        return f"Format the answer as exactly {c['n']} bullet points starting with '- '."
    if t == "include":
        return f"Include the word '{c['word']}'."
    if t == "exclude":
        return f"Do not use the word '{c['word']}'."
    if t == "json":
        return "Reply only with a JSON object that has the key \"answer\"."
    if t == "title":
        return "Start with a title wrapped in double angular brackets, like <<My Title>>."
    if t == "lowercase":
        return "Write everything in lowercase letters."
    if t == "end_with":
        return f"End your reply with the exact phrase '{c['phrase']}'."
    raise KeyError(f"unknown constraint type {t!r}")


def satisfied(c: dict, text: str) -> bool:
    t = c["type"]
    lower_words = [w.lower() for w in words(text)]
    if t == "max_words":
        return 0 < len(lower_words) <= c["n"]
    if t == "min_words":
        return len(lower_words) >= c["n"]
    if t == "max_sentences":
        return 0 < n_sentences(text) <= c["n"]
    if t == "bullets":
        return len(bullets(text)) == c["n"]
    if t == "include":
        return c["word"].lower() in lower_words
    if t == "exclude":
        return c["word"].lower() not in lower_words
    if t == "json":
        try:
            obj = json.loads(text.strip())
        except ValueError:
            return False
        return isinstance(obj, dict) and "answer" in obj
    if t == "title":
        return re.match(r"^\s*<<[^<>\n]+>>", text) is not None
    if t == "lowercase":
        return bool(text.strip()) and text == text.lower()
    if t == "end_with":
        return text.strip().endswith(c["phrase"])
    raise KeyError(f"unknown constraint type {t!r}")
