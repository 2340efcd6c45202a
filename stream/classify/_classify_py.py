"""Pure-Python twin of the compiled classifier kernel (ext/classify.pyx): same API, same results.

It is the readable reference: the compiled kernel must reproduce it bit for bit (tests hold them
equal), and it runs wherever no C compiler is available (CUSTOMS_STREAM_PUREPYTHON=1).

Scoring, per title:
- every normalised token and every pair of adjacent tokens (a bigram) is looked up in the term
  table; a term counts once per title however often it repeats (keyword-stuffed titles are common);
- a matched term adds its integer weight to each heading it names; after a marker term ("for",
  "для") weights are halved (``w >> 1``), because in "case for iPhone" the goods are the case;
- a modifier term (a material or adjective: "gold", "leather", "bamboo") only counts for headings
  that some product noun (any non-modifier term) of the title also names; when the title has no
  product noun at all, modifiers count everywhere. So "Nescafe Gold coffee" is coffee, not gold,
  while "gold ring" is still a gold ring;
- the title's marketplace category adds prior weight to the headings that count (as above) and
  that the text already matched;
- best heading: highest score, ties to the lowest heading index; its code is the code of its
  heaviest matched product noun (first one on ties), or the heading's code when only modifiers
  named it;
- confidence permille = best * 1000 // (best + second + smoothing); 0 when no term matched, and
  then the code is the category's first prior heading, or the fallback code.
"""
from __future__ import annotations

from ._text import TOKEN_PATTERN, fnv1a64, stem_length, table_key


class Kernel:
    """Classify titles against compiled term tables (see stream/classify/_tables.py for the layout)."""

    def __init__(
        self,
        keys,
        slot_start,
        slot_count,
        slot_marker,
        slot_modifier,
        post_heading,
        post_weight,
        post_code,
        heading_code,
        prior_start,
        prior_heading,
        prior_weight,
        ending_bytes,
        ending_offsets,
        fallback_code: int,
        smoothing: int,
    ):
        if smoothing < 1:
            raise ValueError("smoothing must be >= 1 (it keeps the confidence denominator positive)")
        self.mask = len(keys) - 1
        if len(keys) == 0 or len(keys) & self.mask:
            raise ValueError("the key table size must be a power of two")
        self.keys = [int(key) for key in keys]
        self.slot_start = [int(v) for v in slot_start]
        self.slot_count = [int(v) for v in slot_count]
        self.slot_marker = [bool(v) for v in slot_marker]
        self.slot_modifier = [bool(v) for v in slot_modifier]
        self.post_heading = [int(v) for v in post_heading]
        self.post_weight = [int(v) for v in post_weight]
        self.post_code = [int(v) for v in post_code]
        self.heading_code = [int(v) for v in heading_code]
        self.prior_start = [int(v) for v in prior_start]
        self.prior_heading = [int(v) for v in prior_heading]
        self.prior_weight = [int(v) for v in prior_weight]
        raw = bytes(ending_bytes)
        self.endings = tuple(
            raw[int(ending_offsets[k]) : int(ending_offsets[k + 1])] for k in range(len(ending_offsets) - 1)
        )
        self.fallback_code = int(fallback_code)
        self.smoothing = int(smoothing)

    def _find_slot(self, key: int) -> int:
        """Slot of ``key`` in the open-addressing table (linear probing), or -1 when absent."""
        keys, mask = self.keys, self.mask
        slot = key & mask
        while keys[slot]:
            if keys[slot] == key:
                return slot
            slot = (slot + 1) & mask
        return -1

    def _add_term(self, slot, halve, seen_slots, score, modifier_score, named, best_weight, best_code) -> None:
        if slot < 0 or slot in seen_slots:
            return
        seen_slots.add(slot)
        modifier = self.slot_modifier[slot]
        start = self.slot_start[slot]
        for posting in range(start, start + self.slot_count[slot]):
            heading = self.post_heading[posting]
            weight = self.post_weight[posting]
            if halve:
                weight >>= 1
            if heading not in score:
                score[heading] = 0
                modifier_score[heading] = 0
                best_weight[heading] = -1
                best_code[heading] = self.heading_code[heading]
            if modifier:
                modifier_score[heading] += weight
                continue
            named.add(heading)
            score[heading] += weight
            if weight > best_weight[heading]:
                best_weight[heading] = weight
                best_code[heading] = self.post_code[posting]

    def classify_one(self, title: bytes, category: int) -> tuple[int, int]:
        """(code index, confidence permille) of one lowercased UTF-8 title."""
        score: dict[int, int] = {}
        modifier_score: dict[int, int] = {}
        named: set[int] = set()
        best_weight: dict[int, int] = {}
        best_code: dict[int, int] = {}
        seen_slots: set[int] = set()
        after_marker = False
        previous_state = None
        for match in TOKEN_PATTERN.finditer(title):
            token = match.group()
            token = token[: stem_length(token, self.endings)]
            state = fnv1a64(token)
            unigram_slot = self._find_slot(table_key(state))
            self._add_term(unigram_slot, after_marker, seen_slots, score, modifier_score, named, best_weight,
                           best_code)
            if previous_state is not None:
                bigram_state = fnv1a64(token, fnv1a64(b" ", previous_state))
                bigram_slot = self._find_slot(table_key(bigram_state))
                self._add_term(bigram_slot, after_marker, seen_slots, score, modifier_score, named, best_weight,
                               best_code)
            if unigram_slot >= 0 and self.slot_marker[unigram_slot]:
                after_marker = True
            previous_state = state

        has_priors = category >= 0 and self.prior_start[category] < self.prior_start[category + 1]
        if not score:
            if has_priors:
                return self.heading_code[self.prior_heading[self.prior_start[category]]], 0
            return self.fallback_code, 0
        # modifiers and the category prior count for the headings a product noun names (all matched
        # headings when the title has no product noun)
        counts = named if named else score.keys()
        for heading in counts:
            score[heading] += modifier_score[heading]
        if category >= 0:
            for prior in range(self.prior_start[category], self.prior_start[category + 1]):
                heading = self.prior_heading[prior]
                if heading in counts:
                    score[heading] += self.prior_weight[prior]

        best_heading = min(score, key=lambda heading: (-score[heading], heading))
        best = score[best_heading]
        second = max((value for heading, value in score.items() if heading != best_heading), default=0)
        return best_code[best_heading], best * 1000 // (best + second + self.smoothing)

    def classify(self, text, offsets, categories, out_code, out_confidence) -> None:
        """Classify ``len(out_code)`` titles: title i is ``text[offsets[i]:offsets[i + 1]]``.

        ``categories[i]`` is a category index or -1; results go to ``out_code`` (code indexes) and
        ``out_confidence`` (permille). The inputs were checked by the wrapper, as for the compiled kernel.
        """
        data = bytes(text)
        count = len(out_code)
        bounds = [int(v) for v in offsets[: count + 1]]  # checked by the wrapper (check_packed)
        for i in range(count):
            code, confidence = self.classify_one(data[bounds[i] : bounds[i + 1]], int(categories[i]))
            out_code[i] = code
            out_confidence[i] = confidence
