"""Load the classifier's data files and compile them into the kernel's hash table and arrays.

Data directory layout (tab-separated, header row, '#' starts a comment line):
- ``headings.tsv``: ``heading, code, description``; heading is 4 digits, code (4-10 digits, starting
  with the heading) is what the classifier returns when no term names a more precise code. The row
  order is the tie-break order: on equal scores the earlier heading wins.
- ``vocabulary.tsv``: ``heading, code, term, weight``; term is one word or a two-word phrase in
  any language (normalised like titles), weight an integer 1..1000, code empty for the heading's
  code or a longer code for this term ("smartwatch" -> 8517620000).
- ``context_markers.tsv``: ``term``; words after which the text usually names what the goods are
  *for*, not what they are ("case for iPhone"): later terms count half.
- ``modifiers.tsv``: ``term``; materials and adjectives ("gold", "leather", "bamboo"): their weights
  count only for headings that a product noun (any other term) of the same title also names, or
  for every heading when the title names no product at all.
- ``categories.tsv``: ``category, heading, weight``: prior weight a marketplace category gives to
  a heading the text already matched; a category's heaviest row (earliest on ties) is also its
  code when the text matches nothing.
- ``category_aliases.tsv``: ``alias, category`` (other spellings and languages of a category).
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._text import packed_endings, term_key

DEFAULT_DATA_DIR = Path(__file__).parent / "data"
# Other articles of plastics: the customary catch-all heading for low-value e-commerce goods, only
# ever returned with confidence 0, which sends the line to manual review.
FALLBACK_CODE = "3926909709"
MAX_WEIGHT = 1000
CODE_PATTERN = re.compile(r"\d{4,10}")
HEADING_PATTERN = re.compile(r"\d{4}")


@dataclass(frozen=True)
class Tables:
    """Everything a kernel needs, as arrays, plus the names to turn its output back into text."""

    codes: list[str]  # code index -> code string
    headings: list[str]  # heading index -> 4-digit heading
    category_index: dict[str, int]  # category name or alias (lowercase) -> category index
    kernel_arrays: dict[str, object]  # keyword arguments of Kernel(...)
    term_count: int


def _rows(path: Path, columns: list[str]) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) of a TSV file with the given header; comments and blank lines skipped."""
    with path.open(encoding="utf-8", newline="") as handle:
        lines = [(number, line) for number, line in enumerate(handle, start=1)
                 if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise ValueError(f"{path}: empty file")
    header_number, header_line = lines[0]
    header = next(csv.reader([header_line], delimiter="\t", quoting=csv.QUOTE_NONE))
    if header != columns:
        raise ValueError(f"{path}:{header_number}: header must be {columns}, got {header}")
    rows = []
    for number, line in lines[1:]:
        values = next(csv.reader([line.rstrip("\r\n")], delimiter="\t", quoting=csv.QUOTE_NONE))
        if len(values) != len(columns):
            raise ValueError(f"{path}:{number}: expected {len(columns)} tab-separated fields, got {len(values)}")
        rows.append((number, dict(zip(columns, (value.strip() for value in values)))))
    return rows


def _weight(path: Path, number: int, text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_WEIGHT:
        raise ValueError(f"{path}:{number}: weight must be an integer 1..{MAX_WEIGHT}, got {text!r}")
    return int(text)


def load_tables(data_dir: str | Path | None = None) -> Tables:
    """Read and validate the data files in ``data_dir`` (default: the shipped data) and compile them."""
    directory = Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR
    codes: list[str] = []
    code_index: dict[str, int] = {}

    def intern(code: str) -> int:
        if code not in code_index:
            code_index[code] = len(codes)
            codes.append(code)
        return code_index[code]

    headings_path = directory / "headings.tsv"
    headings: list[str] = []
    heading_index: dict[str, int] = {}
    heading_code: list[int] = []
    for number, row in _rows(headings_path, ["heading", "code", "description"]):
        heading, code = row["heading"], row["code"]
        if not HEADING_PATTERN.fullmatch(heading) or heading in heading_index:
            raise ValueError(f"{headings_path}:{number}: heading must be 4 digits and unique, got {heading!r}")
        if not CODE_PATTERN.fullmatch(code) or not code.startswith(heading):
            raise ValueError(f"{headings_path}:{number}: code must be 4-10 digits under heading {heading}")
        heading_index[heading] = len(headings)
        headings.append(heading)
        heading_code.append(intern(code))

    def known_heading(path: Path, number: int, heading: str) -> int:
        if heading not in heading_index:
            raise ValueError(f"{path}:{number}: heading {heading!r} is not in headings.tsv")
        return heading_index[heading]

    # term key -> postings (heading index, weight, code index), in file order
    postings_by_key: dict[int, list[tuple[int, int, int]]] = {}
    seen_pairs: dict[tuple[int, int], int] = {}
    vocabulary_path = directory / "vocabulary.tsv"
    for number, row in _rows(vocabulary_path, ["heading", "code", "term", "weight"]):
        heading = known_heading(vocabulary_path, number, row["heading"])
        code = row["code"] or codes[heading_code[heading]]
        if not CODE_PATTERN.fullmatch(code) or not code.startswith(row["heading"]):
            raise ValueError(f"{vocabulary_path}:{number}: code {code!r} must be 4-10 digits under its heading")
        try:
            key, _ = term_key(row["term"])
        except ValueError as error:
            raise ValueError(f"{vocabulary_path}:{number}: {error}") from None
        if (key, heading) in seen_pairs:
            raise ValueError(f"{vocabulary_path}:{number}: term {row['term']!r} already given for heading "
                             f"{row['heading']} on line {seen_pairs[key, heading]} (after normalisation)")
        seen_pairs[key, heading] = number
        weight = _weight(vocabulary_path, number, row["weight"])
        postings_by_key.setdefault(key, []).append((heading, weight, intern(code)))

    markers_path = directory / "context_markers.tsv"
    marker_keys = set()
    for number, row in _rows(markers_path, ["term"]):
        key, token_count = term_key(row["term"])
        if token_count != 1:
            raise ValueError(f"{markers_path}:{number}: a context marker is one word")
        marker_keys.add(key)

    modifiers_path = directory / "modifiers.tsv"
    modifier_keys = set()
    for number, row in _rows(modifiers_path, ["term"]):
        try:
            key, _ = term_key(row["term"])
        except ValueError as error:
            raise ValueError(f"{modifiers_path}:{number}: {error}") from None
        if key not in postings_by_key:
            raise ValueError(f"{modifiers_path}:{number}: modifier {row['term']!r} is not in vocabulary.tsv")
        modifier_keys.add(key)

    categories_path = directory / "categories.tsv"
    priors_by_category: dict[str, list[tuple[int, int, int]]] = {}
    for number, row in _rows(categories_path, ["category", "heading", "weight"]):
        category = row["category"].lower()
        if not category:
            raise ValueError(f"{categories_path}:{number}: empty category")
        heading = known_heading(categories_path, number, row["heading"])
        weight = _weight(categories_path, number, row["weight"])
        priors_by_category.setdefault(category, []).append((-weight, number, heading))
    category_names = sorted(priors_by_category)
    category_index = {name: index for index, name in enumerate(category_names)}
    aliases_path = directory / "category_aliases.tsv"
    for number, row in _rows(aliases_path, ["alias", "category"]):
        alias, target = row["alias"].lower(), row["category"].lower()
        if target not in category_index:
            raise ValueError(f"{aliases_path}:{number}: unknown category {row['category']!r}")
        if alias in category_index and category_index[alias] != category_index[target]:
            raise ValueError(f"{aliases_path}:{number}: alias {row['alias']!r} already names another category")
        category_index[alias] = category_index[target]

    prior_start = [0]
    prior_heading: list[int] = []
    prior_weight: list[int] = []
    for name in category_names:
        for negative_weight, _, heading in sorted(priors_by_category[name]):  # heaviest first, then file order
            prior_heading.append(heading)
            prior_weight.append(-negative_weight)
        prior_start.append(len(prior_heading))

    all_keys = sorted(set(postings_by_key) | marker_keys)
    size = 8
    while size < 4 * len(all_keys):  # load <= 1/4: a title's many unknown tokens stop at the first probe
        size *= 2
    keys = np.zeros(size, dtype=np.uint64)
    slot_start = np.zeros(size, dtype=np.int32)
    slot_count = np.zeros(size, dtype=np.int32)
    slot_marker = np.zeros(size, dtype=np.uint8)
    slot_modifier = np.zeros(size, dtype=np.uint8)
    post_heading: list[int] = []
    post_weight: list[int] = []
    post_code: list[int] = []
    for key in all_keys:
        slot = key & (size - 1)
        while keys[slot]:
            slot = (slot + 1) & (size - 1)
        keys[slot] = key
        postings = postings_by_key.get(key, [])
        slot_start[slot] = len(post_heading)
        slot_count[slot] = len(postings)
        slot_marker[slot] = key in marker_keys
        slot_modifier[slot] = key in modifier_keys
        for heading, weight, code in postings:
            post_heading.append(heading)
            post_weight.append(weight)
            post_code.append(code)

    ending_bytes, ending_offsets = packed_endings()
    fallback = intern(FALLBACK_CODE)
    kernel_arrays = {
        "keys": keys,
        "slot_start": slot_start,
        "slot_count": slot_count,
        "slot_marker": slot_marker,
        "slot_modifier": slot_modifier,
        "post_heading": np.array(post_heading, dtype=np.int32),
        "post_weight": np.array(post_weight, dtype=np.int32),
        "post_code": np.array(post_code, dtype=np.int32),
        "heading_code": np.array(heading_code, dtype=np.int32),
        "prior_start": np.array(prior_start, dtype=np.int32),
        "prior_heading": np.array(prior_heading, dtype=np.int32),
        "prior_weight": np.array(prior_weight, dtype=np.int32),
        "ending_bytes": ending_bytes,
        "ending_offsets": np.array(ending_offsets, dtype=np.int64),
        "fallback_code": fallback,
    }
    return Tables(codes=codes, headings=headings, category_index=category_index,
                  kernel_arrays=kernel_arrays, term_count=len(seen_pairs))
