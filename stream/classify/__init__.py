"""HS-code classifier: goods description (and optional marketplace category) -> HS code + confidence.

The assessment engine calls it when a line's ``hs_code`` is missing or invalid (``hs_source``
"classified"); a confidence under ``LOW_CONFIDENCE_PERMILLE`` flags the line for manual review.

Vocabulary and weights are data (``stream/classify/data/``, format in ``_tables.py``); scoring is
integer arithmetic in a compiled kernel (ext/classify.pyx) with an exact pure-Python twin
(``_classify_py.py``), chosen by ``stream._backend.load_kernel``.
"""
from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import numpy as np

from stream._backend import backend_of, load_kernel

from ._tables import DEFAULT_DATA_DIR, FALLBACK_CODE, Tables, load_tables

__all__ = [
    "Classifier",
    "FALLBACK_CODE",
    "LOW_CONFIDENCE_PERMILLE",
    "benchmark",
    "evaluate",
    "kernel_module",
]

kernel_module: ModuleType = load_kernel("classify", "stream.classify._classify", "stream.classify._classify_py")

# Under this confidence the engine flags the line for manual review. Chosen on the tuning set before
# its titles were used to adjust weights: 15% of titles fell under it, and 97% of those above it had
# the right heading (``evaluate`` reports both figures).
LOW_CONFIDENCE_PERMILLE = 550
# Added to the confidence denominator so one weak keyword alone does not read as certainty:
# a lone weight-100 term gives 100 * 1000 // (100 + 0 + 40) = 714.
CONFIDENCE_SMOOTHING = 40


class Classifier:
    """Classifies batches of descriptions with one compiled set of term tables."""

    def __init__(self, tables: Tables, kernel: ModuleType | None = None):
        self.tables = tables
        module = kernel if kernel is not None else kernel_module
        self.backend = backend_of(module)
        self._kernel = module.Kernel(**tables.kernel_arrays, smoothing=CONFIDENCE_SMOOTHING)
        self._category_count = len(tables.kernel_arrays["prior_start"]) - 1
        self._codes = np.array(tables.codes, dtype=object)
        self._category_index = tables.category_index

    @classmethod
    def load(cls, path: str | Path | None = None) -> Classifier:
        """The classifier for the data directory ``path`` (default: the shipped data), built once."""
        directory = Path(path) if path is not None else DEFAULT_DATA_DIR
        return _load_cached(directory.resolve())

    def classify_batch(
        self, descriptions: Sequence[str], categories: Sequence[str | None] | None = None
    ) -> tuple[list[str], np.ndarray]:
        """HS codes and confidence permille (int32, 0..1000) for each description."""
        count = len(descriptions)
        category_ids = self._category_ids(categories, count)
        text, offsets = _pack(descriptions)
        codes, confidence = self.classify_packed(text, offsets, category_ids)
        return self._codes[codes].tolist(), confidence

    def classify_packed(self, text: bytes, offsets: np.ndarray, category_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The kernel's entry: code indexes and confidence permille of the titles
        ``text[offsets[i]:offsets[i + 1]]`` (lowercased UTF-8) with category indexes (or -1)."""
        offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        category_ids = np.ascontiguousarray(category_ids, dtype=np.int32)
        count = len(offsets) - 1 if len(offsets) else 0
        check_packed(text, offsets, category_ids, count, self._category_count)
        out_code = np.empty(count, dtype=np.int32)
        out_confidence = np.empty(count, dtype=np.int32)
        self._kernel.classify(text, offsets, category_ids, out_code, out_confidence)
        return out_code, out_confidence

    def classify_one(self, description: str, category: str | None = None) -> tuple[str, int]:
        """(HS code, confidence permille) of one description."""
        codes, confidence = self.classify_batch([description], [category])
        return codes[0], int(confidence[0])

    def _category_ids(self, categories: Sequence[str | None] | None, count: int) -> np.ndarray:
        if categories is None:
            return np.full(count, -1, dtype=np.int32)
        if len(categories) != count:
            raise ValueError(f"{len(categories)} categories for {count} descriptions")
        index = self._category_index
        # unknown categories carry no prior rather than failing: marketplaces invent new ones
        return np.fromiter(
            (index.get(category.strip().lower(), -1) if category else -1 for category in categories),
            dtype=np.int32,
            count=count,
        )


def check_packed(text: bytes, offsets: np.ndarray, categories: np.ndarray, count: int, category_count: int) -> None:
    """What both kernels rely on (the compiled one reads without bounds checks): checked once, here."""
    if len(offsets) < count + 1 or len(categories) < count:
        raise ValueError("offsets need n + 1 entries and categories n entries")
    if count and (offsets[0] < 0 or offsets[count] > len(text)):
        raise ValueError("offsets point outside the text buffer")
    if count and np.any(np.diff(offsets[: count + 1]) < 0):
        raise ValueError("offsets must not decrease")
    if count and (categories[:count].min() < -1 or categories[:count].max() >= category_count):
        raise ValueError(f"a category index is not -1 or below {category_count}")


@functools.lru_cache(maxsize=8)
def _load_cached(directory: Path) -> Classifier:
    return Classifier(load_tables(directory))


def _pack(descriptions: Sequence[str]) -> tuple[bytes, np.ndarray]:
    """One lowercased UTF-8 buffer of all descriptions, joined by newlines, and n + 1 byte offsets.

    Lowercasing the joined text equals lowercasing each description (a newline is neither cased nor
    case-ignorable, so it stops Greek final-sigma context too). A newline inside a description
    would shift the offsets, so such descriptions get spaces instead: both separate tokens alike.
    """
    count = len(descriptions)
    try:
        joined = "\n".join(descriptions)
    except TypeError:
        joined = "\n".join("" if description is None else description for description in descriptions)
    if count and joined.count("\n") != count - 1:
        joined = "\n".join(("" if d is None else d).replace("\n", " ") for d in descriptions)
    text = joined.lower().encode("utf-8", "surrogatepass")
    offsets = np.empty(count + 1, dtype=np.int64)
    if count:
        newlines = np.flatnonzero(np.frombuffer(text, dtype=np.uint8) == 0x0A)
        offsets[0] = 0
        offsets[1:count] = newlines + 1
        offsets[count] = len(text)
    else:
        offsets[0] = 0
    return text, offsets


def read_labelled(path: str | Path) -> list[tuple[str, str | None, str]]:
    """Rows (heading, category or None, title) of an evaluation TSV (header: heading, category, title)."""
    rows = []
    with Path(path).open(encoding="utf-8") as handle:
        header = handle.readline().rstrip("\n").split("\t")
        if header != ["heading", "category", "title"]:
            raise ValueError(f"{path}: header must be heading, category, title")
        for number, line in enumerate(handle, start=2):
            if not line.strip():
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 3 or not fields[0].isdigit() or len(fields[0]) != 4:
                raise ValueError(f"{path}:{number}: expected a 4-digit heading, a category and a title")
            rows.append((fields[0], fields[1] or None, fields[2]))
    return rows


def evaluate(path: str | Path, classifier: Classifier | None = None) -> dict:
    """Accuracy of the classifier on a labelled TSV: heading (4-digit) and chapter (2-digit) level.

    Also reports the share of titles under LOW_CONFIDENCE_PERMILLE (sent to manual review) and the
    heading accuracy of those above it, and lists the misclassified titles.
    """
    model = classifier if classifier is not None else Classifier.load()
    rows = read_labelled(path)
    codes, confidence = model.classify_batch([title for _, _, title in rows], [cat for _, cat, _ in rows])
    total = len(rows)
    heading_hits = chapter_hits = confident = confident_hits = 0
    errors = []
    for (expected, category, title), code, permille in zip(rows, codes, confidence.tolist()):
        heading_ok = code[:4] == expected
        heading_hits += heading_ok
        chapter_hits += code[:2] == expected[:2]
        if permille >= LOW_CONFIDENCE_PERMILLE:
            confident += 1
            confident_hits += heading_ok
        if not heading_ok:
            errors.append({"title": title, "category": category, "expected": expected,
                           "got": code, "confidence": permille})
    return {
        "titles": total,
        "headings": len({expected for expected, _, _ in rows}),
        "heading_accuracy": heading_hits / total if total else 0.0,
        "chapter_accuracy": chapter_hits / total if total else 0.0,
        "manual_review_share": (total - confident) / total if total else 0.0,
        "confident_heading_accuracy": confident_hits / confident if confident else 0.0,
        "backend": model.backend,
        "errors": errors,
    }


def benchmark_titles(count: int) -> list[str]:
    """``count`` realistic titles for speed measurements: the evaluation sets, cycled."""
    data = DEFAULT_DATA_DIR
    titles = [title for name in ("eval_tune.tsv", "eval_holdout.tsv") for _, _, title in read_labelled(data / name)]
    return [titles[i % len(titles)] for i in range(count)]


def benchmark(n: int = 200_000, python_n: int = 5_000) -> dict:
    """Titles per second of ``classify_batch``, compiled kernel vs pure-Python twin, same titles.

    The twin is timed on the first ``python_n`` titles only (about 50x slower: README "Numbers"); both are
    end to end: lowercasing, packing, kernel, code lookup.
    """
    from . import _classify_py

    tables = Classifier.load().tables
    titles = benchmark_titles(n)
    result: dict = {"titles": n}
    try:
        from . import _classify as compiled
    except ImportError:
        compiled = None
    if compiled is not None:
        fast = Classifier(tables, compiled)
        fast.classify_batch(titles[:1000])  # warm caches
        started = time.perf_counter()
        fast.classify_batch(titles)
        result["titles_per_s_compiled"] = n / (time.perf_counter() - started)
    else:
        result["titles_per_s_compiled"] = None
    slow = Classifier(tables, _classify_py)
    sample = titles[:python_n]
    started = time.perf_counter()
    slow.classify_batch(sample)
    result["titles_per_s_python"] = len(sample) / (time.perf_counter() - started)
    compiled_rate = result["titles_per_s_compiled"]
    result["ratio"] = compiled_rate / result["titles_per_s_python"] if compiled_rate else None
    return result
