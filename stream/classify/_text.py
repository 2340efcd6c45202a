"""Byte-level text rules shared by the classifier's table builder and its pure-Python twin.

The compiled kernel (ext/classify.pyx) implements exactly these rules in C; the parity tests hold
the two equal. Everything here works on UTF-8 bytes of text that Python has already lowercased with
``str.lower()``:

- a token is a maximal run of ASCII letters/digits or bytes >= 0x80 (any non-ASCII character);
- a token is normalised by cutting a suffix, never by rewriting bytes, so the kernel can keep
  working on spans of the one input buffer (see ``stem_length``);
- a term is one normalised token or two adjacent ones joined by one space (a bigram such as
  "phone case"); its key is the 64-bit FNV-1a hash of those bytes.
"""
from __future__ import annotations

import re

FNV_OFFSET_BASIS = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
MASK64 = 0xFFFFFFFFFFFFFFFF
SPACE = 0x20

TOKEN_PATTERN = re.compile(rb"[0-9A-Za-z\x80-\xff]+")

# Russian endings cut from Cyrillic tokens, longest first so "ами" wins over "и". A light stemmer:
# it folds the common case/number/gender forms ("сумка", "сумки", "сумку"; "женская", "женские")
# onto one stem; the vocabulary lists the irregular forms ("чехол"/"чехлы") itself.
RUSSIAN_ENDINGS: tuple[str, ...] = (
    "ями", "ами", "ого", "его", "ому", "ему", "ыми", "ими",
    "ая", "яя", "ое", "ее", "ые", "ие", "ый", "ий", "ой", "ей", "ом", "ем", "ам", "ям", "ах",
    "ях", "ов", "ев", "ую", "юю", "ым", "им", "ых", "их", "ью",
    "а", "я", "ы", "и", "у", "ю", "е", "о", "ь", "й",
)
# a Cyrillic stem keeps at least three letters (two UTF-8 bytes each): "мяча" -> "мяч", "очки" -> "очк"
MIN_NON_ASCII_STEM_BYTES = 6
VOWELS_AND_Y = frozenset(b"aeiouy")


def packed_endings() -> tuple[bytes, list[int]]:
    """The Russian endings as one byte string plus offsets (len + 1 entries), longest first."""
    encoded = [ending.encode("utf-8") for ending in RUSSIAN_ENDINGS]
    offsets = [0]
    for ending in encoded:
        offsets.append(offsets[-1] + len(ending))
    return b"".join(encoded), offsets


_ENDINGS_UTF8 = tuple(ending.encode("utf-8") for ending in RUSSIAN_ENDINGS)


def stem_length(token: bytes, endings: tuple[bytes, ...] = _ENDINGS_UTF8) -> int:
    """Length of the normalised prefix of ``token`` (a non-empty token).

    English (token ends in an ASCII letter): plural and -y/-ie forms fold onto one stem:
    "batteries"/"battery" -> "batter", "hoodies"/"hoodie" -> "hood", "dresses" -> "dress",
    "watches" -> "watch", "lenses"/"lens" -> "len", "shoes" -> "shoe"; "dress", "glass", "bus" keep
    their final s. Tokens ending in a digit are left alone ("iphone15", "925").
    Non-ASCII (token ends in a byte >= 0x80): the first of ``endings`` (longest first) that the
    token ends with and that leaves a stem of at least MIN_NON_ASCII_STEM_BYTES bytes is cut.
    """
    n = len(token)
    last = token[n - 1]
    if last >= 0x80:
        for ending in endings:
            size = len(ending)
            if n - size >= MIN_NON_ASCII_STEM_BYTES and token.endswith(ending):
                return n - size
        return n
    if not 0x61 <= last <= 0x7A:  # not a-z
        return n
    if n >= 5 and token[n - 3] == 0x69 and token[n - 2] == 0x65 and last == 0x73:  # -ies
        return n - 3
    if n >= 5 and token[n - 2] == 0x69 and last == 0x65:  # -ie
        return n - 2
    if n >= 4 and last == 0x79 and token[n - 2] not in VOWELS_AND_Y:  # consonant + y
        return n - 1
    if n >= 5 and token[n - 2] == 0x65 and last == 0x73:  # -es after s, x, z, ch, sh
        before = token[n - 3]
        if before in (0x73, 0x78, 0x7A) or (before == 0x68 and token[n - 4] in (0x63, 0x73)):
            n -= 2
    if n >= 4 and token[n - 1] == 0x73 and token[n - 2] not in (0x73, 0x75, 0x69):  # -s, not -ss/-us/-is
        return n - 1
    return n


def fnv1a64(data: bytes, state: int = FNV_OFFSET_BASIS) -> int:
    """FNV-1a 64-bit hash of ``data``, continuing from ``state`` (so hash("a b") chains from hash("a"))."""
    for byte in data:
        state = ((state ^ byte) * FNV_PRIME) & MASK64
    return state


def table_key(state: int) -> int:
    """The hash-table key of a term hash: 0 marks an empty slot, so a hash of 0 becomes 1."""
    return state if state else 1


def normalised_tokens(text: bytes) -> list[bytes]:
    """The normalised tokens of lowercased UTF-8 ``text``, in order."""
    tokens = []
    for match in TOKEN_PATTERN.finditer(text):
        token = match.group()
        tokens.append(token[: stem_length(token)])
    return tokens


def term_key(phrase: str) -> tuple[int, int]:
    """(key, number of tokens) of a vocabulary term: one token, or two read as a bigram.

    The phrase goes through the same lowercasing, tokenising and stemming as a title, so
    "T-Shirts" becomes the bigram "t shirt".
    """
    tokens = normalised_tokens(phrase.lower().encode("utf-8"))
    if not tokens or len(tokens) > 2:
        raise ValueError(f"a vocabulary term is one or two tokens, got {len(tokens)} in {phrase!r}")
    state = fnv1a64(tokens[0])
    if len(tokens) == 2:
        state = fnv1a64(tokens[1], fnv1a64(b" ", state))
    return table_key(state), len(tokens)
