# Compiled key scanner of the feed reader (stream/contracts/reader.py). Twin: stream/contracts/_feedscan_py.py.
#
# The fast reader decodes a message with msgspec, which (like orjson) keeps the last value of a key named
# twice and drops keys its contract does not name. This scan tells the reader whether it may trust that
# decode: it counts the key-value pairs of a JSON text that msgspec accepted and sees whether any object
# repeats a key. It reads raw bytes, so it gives up (UNSURE) where raw bytes do not decide key equality
# (a key written with an escape), and on objects too wide or too deep for its fixed tables; the reader
# then takes the pure path. Only ever called on valid JSON.

from libc.string cimport memcmp

cdef enum:
    MAX_DEPTH = 64
    MAX_KEYS = 64  # per object
    MAX_LIVE_KEYS = 4096  # MAX_DEPTH * MAX_KEYS
    C_DUPLICATE = -1
    C_UNSURE = -2

DUPLICATE = C_DUPLICATE
UNSURE = C_UNSURE


cdef inline Py_ssize_t _skip_ws(const unsigned char *s, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    while i < n and (s[i] == 32 or s[i] == 9 or s[i] == 10 or s[i] == 13):
        i += 1
    return i


def scan_keys(const unsigned char[::1] text):
    """The number of key-value pairs in the JSON text, DUPLICATE (-1) when an object names a key twice,
    UNSURE (-2) when the raw bytes cannot tell (an escaped key, more than 64 keys in one object or
    nesting deeper than 64)."""
    cdef Py_ssize_t n = text.shape[0]
    if n == 0:
        return 0
    cdef Py_ssize_t result
    with nogil:
        result = _scan(&text[0], n)
    return result


cdef Py_ssize_t _scan(const unsigned char *s, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i = 0, start, end, j, k, pairs = 0, top = 0, depth = 0
    cdef bint escaped
    cdef unsigned char c
    cdef Py_ssize_t key_start[MAX_LIVE_KEYS]
    cdef Py_ssize_t key_len[MAX_LIVE_KEYS]
    cdef Py_ssize_t frame_base[MAX_DEPTH + 1]
    cdef bint frame_object[MAX_DEPTH + 1]
    if True:
        while i < n:
            c = s[i]
            if c == 34:  # a string: a key when a colon follows
                i += 1
                start = i
                escaped = False
                while i < n and s[i] != 34:
                    if s[i] == 92:
                        escaped = True
                        i += 2
                    else:
                        i += 1
                end = i
                i += 1
                j = _skip_ws(s, i, n)
                if j < n and s[j] == 58 and depth > 0 and frame_object[depth]:
                    if escaped:
                        return C_UNSURE
                    pairs += 1
                    if top - frame_base[depth] >= MAX_KEYS:
                        return C_UNSURE
                    for k in range(frame_base[depth], top):
                        if key_len[k] == end - start and memcmp(s + key_start[k], s + start, end - start) == 0:
                            return C_DUPLICATE
                    key_start[top] = start
                    key_len[top] = end - start
                    top += 1
                    i = j + 1
            elif c == 123 or c == 91:  # { or [
                if depth >= MAX_DEPTH:
                    return C_UNSURE
                depth += 1
                frame_base[depth] = top
                frame_object[depth] = c == 123
                i += 1
            elif c == 125 or c == 93:  # } or ]
                if depth > 0:
                    top = frame_base[depth]
                    depth -= 1
                i += 1
            else:
                i += 1
    return pairs
