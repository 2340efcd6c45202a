# cython: language_level=3
"""Compiled classifier kernel: description -> HS code index and confidence, for a whole batch.

The pure-Python twin stream/classify/_classify_py.py is the reference and documents the scoring;
this module computes the same integers over one contiguous UTF-8 buffer without the GIL. Text rules
(tokens, stemming, FNV-1a term keys) are those of stream/classify/_text.py.
"""
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.string cimport memcmp

import numpy as np

cdef uint64_t FNV_OFFSET_BASIS = 0xCBF29CE484222325ULL
cdef uint64_t FNV_PRIME = 0x100000001B3ULL
cdef int MIN_NON_ASCII_STEM_BYTES = 6


cdef inline bint is_token_byte(uint8_t c) noexcept nogil:
    return (c >= 0x80 or (c >= 0x30 and c <= 0x39) or (c >= 0x61 and c <= 0x7A)
            or (c >= 0x41 and c <= 0x5A))


cdef inline bint is_vowel_or_y(uint8_t c) noexcept nogil:
    return c == 0x61 or c == 0x65 or c == 0x69 or c == 0x6F or c == 0x75 or c == 0x79


cdef inline Py_ssize_t stem_length(const uint8_t* token, Py_ssize_t n, const uint8_t* endings,
                                   const int64_t* ending_offsets, Py_ssize_t ending_count) noexcept nogil:
    """Same rules as stream.classify._text.stem_length (read its docstring)."""
    cdef uint8_t last = token[n - 1]
    cdef uint8_t before
    cdef Py_ssize_t k, size
    if last >= 0x80:
        for k in range(ending_count):
            size = ending_offsets[k + 1] - ending_offsets[k]
            if n - size >= MIN_NON_ASCII_STEM_BYTES and memcmp(token + n - size, endings + ending_offsets[k], size) == 0:
                return n - size
        return n
    if last < 0x61 or last > 0x7A:
        return n
    if n >= 5 and token[n - 3] == 0x69 and token[n - 2] == 0x65 and last == 0x73:  # -ies
        return n - 3
    if n >= 5 and token[n - 2] == 0x69 and last == 0x65:  # -ie
        return n - 2
    if n >= 4 and last == 0x79 and not is_vowel_or_y(token[n - 2]):  # consonant + y
        return n - 1
    if n >= 5 and token[n - 2] == 0x65 and last == 0x73:  # -es after s, x, z, ch, sh
        before = token[n - 3]
        if before == 0x73 or before == 0x78 or before == 0x7A or (before == 0x68 and (token[n - 4] == 0x63 or token[n - 4] == 0x73)):
            n -= 2
    if n >= 4 and token[n - 1] == 0x73 and token[n - 2] != 0x73 and token[n - 2] != 0x75 and token[n - 2] != 0x69:
        return n - 1
    return n


cdef inline uint64_t fnv1a64(const uint8_t* data, Py_ssize_t n, uint64_t state) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(n):
        state = (state ^ data[k]) * FNV_PRIME
    return state


cdef inline Py_ssize_t find_slot(const uint64_t* keys, uint64_t mask, uint64_t state) noexcept nogil:
    cdef uint64_t key = state if state != 0 else 1
    cdef uint64_t slot = key & mask
    while keys[slot] != 0:
        if keys[slot] == key:
            return <Py_ssize_t>slot
        slot = (slot + 1) & mask
    return -1


cdef class Kernel:
    """Term tables plus the batch entry point ``classify``; the twin's Kernel has the same API."""

    cdef uint64_t[::1] keys
    cdef int32_t[::1] slot_start, slot_count, post_heading, post_weight, post_code
    cdef int32_t[::1] heading_code, prior_start, prior_heading, prior_weight
    cdef uint8_t[::1] slot_marker, slot_modifier, ending_bytes
    cdef int64_t[::1] ending_offsets
    cdef uint64_t mask
    cdef int32_t fallback_code, smoothing
    cdef Py_ssize_t heading_count

    def __init__(self, keys, slot_start, slot_count, slot_marker, slot_modifier, post_heading, post_weight,
                 post_code, heading_code, prior_start, prior_heading, prior_weight, ending_bytes,
                 ending_offsets, int fallback_code, int smoothing):
        if smoothing < 1:
            raise ValueError("smoothing must be >= 1 (it keeps the confidence denominator positive)")
        size = len(keys)
        if size == 0 or size & (size - 1):
            raise ValueError("the key table size must be a power of two")
        # private contiguous copies: the kernel must not see later changes to the caller's arrays
        self.keys = np.array(keys, dtype=np.uint64)
        self.slot_start = np.array(slot_start, dtype=np.int32)
        self.slot_count = np.array(slot_count, dtype=np.int32)
        self.slot_marker = np.array(slot_marker, dtype=np.uint8)
        self.slot_modifier = np.array(slot_modifier, dtype=np.uint8)
        if len(self.slot_marker) != size or len(self.slot_modifier) != size:
            raise ValueError("slot flags need one entry per key slot")
        self.post_heading = np.array(post_heading, dtype=np.int32)
        self.post_weight = np.array(post_weight, dtype=np.int32)
        self.post_code = np.array(post_code, dtype=np.int32)
        self.heading_code = np.array(heading_code, dtype=np.int32)
        self.prior_start = np.array(prior_start, dtype=np.int32)
        self.prior_heading = np.array(prior_heading, dtype=np.int32)
        self.prior_weight = np.array(prior_weight, dtype=np.int32)
        self.ending_bytes = np.frombuffer(bytes(ending_bytes) + b"\0", dtype=np.uint8).copy()
        self.ending_offsets = np.array(ending_offsets, dtype=np.int64)
        self.mask = size - 1
        self.fallback_code = fallback_code
        self.smoothing = smoothing
        self.heading_count = len(heading_code)
        if len(self.post_heading) and (np.min(self.post_heading) < 0 or np.max(self.post_heading) >= self.heading_count):
            raise ValueError("a posting names a heading outside the heading table")
        if len(self.prior_heading) and (np.min(self.prior_heading) < 0 or np.max(self.prior_heading) >= self.heading_count):
            raise ValueError("a prior names a heading outside the heading table")

    def classify(self, const uint8_t[::1] text, const int64_t[::1] offsets, const int32_t[::1] categories,
                 int32_t[::1] out_code, int32_t[::1] out_confidence):
        """Classify ``len(out_code)`` titles: title i is ``text[offsets[i]:offsets[i + 1]]``.

        ``categories[i]`` is a category index or -1; results go to ``out_code`` (code indexes) and
        ``out_confidence`` (permille). The inputs were checked by the Python wrapper
        (stream/classify/__init__.py: ``check_packed``), once for both backends.
        """
        cdef Py_ssize_t count = out_code.shape[0]
        cdef Py_ssize_t i
        if count == 0:
            return

        # per-call scratch, so one Kernel may serve several threads
        heading_count = max(self.heading_count, 1)
        cdef int32_t[::1] score = np.zeros(heading_count, dtype=np.int32)
        cdef int32_t[::1] modifier_score = np.zeros(heading_count, dtype=np.int32)
        cdef int64_t[::1] named_stamp = np.zeros(heading_count, dtype=np.int64)
        cdef int32_t[::1] best_weight = np.zeros(heading_count, dtype=np.int32)
        cdef int32_t[::1] best_code = np.zeros(heading_count, dtype=np.int32)
        cdef int64_t[::1] heading_stamp = np.zeros(heading_count, dtype=np.int64)
        cdef int32_t[::1] touched = np.zeros(heading_count, dtype=np.int32)
        cdef int64_t[::1] slot_stamp = np.zeros(self.keys.shape[0], dtype=np.int64)
        cdef const uint8_t* data = &text[0] if text.shape[0] else NULL

        self._classify(data, &offsets[0], &categories[0], &out_code[0], &out_confidence[0], count,
                       &score[0], &modifier_score[0], &named_stamp[0], &best_weight[0], &best_code[0],
                       &heading_stamp[0], &touched[0], &slot_stamp[0])

    cdef void _classify(self, const uint8_t* text, const int64_t* offsets, const int32_t* categories,
                        int32_t* out_code, int32_t* out_confidence, Py_ssize_t count,
                        int32_t* score, int32_t* modifier_score, int64_t* named_stamp, int32_t* best_weight,
                        int32_t* best_code, int64_t* heading_stamp, int32_t* touched, int64_t* slot_stamp) noexcept:
        cdef const uint64_t* keys = &self.keys[0]
        cdef const int32_t* slot_start = &self.slot_start[0]
        cdef const int32_t* slot_count = &self.slot_count[0]
        cdef const uint8_t* slot_marker = &self.slot_marker[0]
        cdef const uint8_t* slot_modifier = &self.slot_modifier[0]
        cdef const int32_t* post_heading = &self.post_heading[0] if self.post_heading.shape[0] else NULL
        cdef const int32_t* post_weight = &self.post_weight[0] if self.post_weight.shape[0] else NULL
        cdef const int32_t* post_code = &self.post_code[0] if self.post_code.shape[0] else NULL
        cdef const int32_t* heading_code = &self.heading_code[0] if self.heading_code.shape[0] else NULL
        cdef const int32_t* prior_start = &self.prior_start[0]
        cdef const int32_t* prior_heading = &self.prior_heading[0] if self.prior_heading.shape[0] else NULL
        cdef const int32_t* prior_weight = &self.prior_weight[0] if self.prior_weight.shape[0] else NULL
        cdef const uint8_t* endings = &self.ending_bytes[0]
        cdef const int64_t* ending_offsets = &self.ending_offsets[0]
        cdef Py_ssize_t ending_count = self.ending_offsets.shape[0] - 1
        cdef uint64_t mask = self.mask
        cdef int64_t smoothing = self.smoothing
        cdef int32_t fallback_code = self.fallback_code

        cdef Py_ssize_t i, pos, end, token_start, token_end, slot, unigram_slot, term, posting, t
        cdef Py_ssize_t touched_count, heading, best_heading
        cdef int64_t stamp
        cdef uint64_t state, previous_state, bigram_state
        cdef bint has_previous, after_marker, modifier, has_noun
        cdef int32_t weight, category
        cdef int64_t best, second, value
        cdef Py_ssize_t slots[2]

        with nogil:
            for i in range(count):
                stamp = i + 1
                touched_count = 0
                has_previous = False
                after_marker = False
                has_noun = False
                previous_state = 0
                pos = offsets[i]
                end = offsets[i + 1]
                while pos < end:
                    if not is_token_byte(text[pos]):
                        pos += 1
                        continue
                    token_start = pos
                    while pos < end and is_token_byte(text[pos]):
                        pos += 1
                    token_end = token_start + stem_length(text + token_start, pos - token_start,
                                                          endings, ending_offsets, ending_count)
                    state = fnv1a64(text + token_start, token_end - token_start, FNV_OFFSET_BASIS)
                    unigram_slot = find_slot(keys, mask, state)
                    slots[0] = unigram_slot
                    slots[1] = -1
                    if has_previous:
                        bigram_state = fnv1a64(text + token_start, token_end - token_start,
                                               (previous_state ^ 0x20) * FNV_PRIME)
                        slots[1] = find_slot(keys, mask, bigram_state)
                    for term in range(2):
                        slot = slots[term]
                        if slot < 0 or slot_stamp[slot] == stamp:
                            continue
                        slot_stamp[slot] = stamp  # a term counts once per title
                        modifier = slot_modifier[slot]
                        for posting in range(slot_start[slot], slot_start[slot] + slot_count[slot]):
                            heading = post_heading[posting]
                            weight = post_weight[posting]
                            if after_marker:
                                weight = weight >> 1
                            if heading_stamp[heading] != stamp:
                                heading_stamp[heading] = stamp
                                score[heading] = 0
                                modifier_score[heading] = 0
                                best_weight[heading] = -1
                                best_code[heading] = heading_code[heading]
                                touched[touched_count] = <int32_t>heading
                                touched_count += 1
                            if modifier:
                                modifier_score[heading] += weight
                                continue
                            named_stamp[heading] = stamp
                            has_noun = True
                            score[heading] += weight
                            if weight > best_weight[heading]:
                                best_weight[heading] = weight
                                best_code[heading] = post_code[posting]
                    if unigram_slot >= 0 and slot_marker[unigram_slot]:
                        after_marker = True
                    previous_state = state
                    has_previous = True

                category = categories[i]
                if touched_count == 0:
                    out_confidence[i] = 0
                    if category >= 0 and prior_start[category] < prior_start[category + 1]:
                        out_code[i] = heading_code[prior_heading[prior_start[category]]]
                    else:
                        out_code[i] = fallback_code
                    continue
                # modifiers and the prior count for headings a product noun names (all when none does)
                for t in range(touched_count):
                    heading = touched[t]
                    if not has_noun or named_stamp[heading] == stamp:
                        score[heading] += modifier_score[heading]
                if category >= 0:
                    for posting in range(prior_start[category], prior_start[category + 1]):
                        heading = prior_heading[posting]
                        if heading_stamp[heading] == stamp and (not has_noun or named_stamp[heading] == stamp):
                            score[heading] += prior_weight[posting]

                best_heading = -1
                best = -1
                second = 0
                for t in range(touched_count):
                    heading = touched[t]
                    value = score[heading]
                    if value > best or (value == best and heading < best_heading):
                        if best_heading >= 0:
                            second = best
                        best = value
                        best_heading = heading
                    elif value > second:
                        second = value
                out_code[i] = best_code[best_heading]
                out_confidence[i] = <int32_t>(best * 1000 // (best + second + smoothing))
