"""Pure-Python twin of ext/feedscan.pyx (same algorithm, same results): see that file."""
from __future__ import annotations

MAX_DEPTH = 64
MAX_KEYS = 64
DUPLICATE = -1
UNSURE = -2

_WS = b" \t\n\r"


def scan_keys(text: bytes) -> int:
    """The number of key-value pairs in the JSON text, DUPLICATE (-1) when an object names a key twice,
    UNSURE (-2) when the raw bytes cannot tell (an escaped key, more than 64 keys in one object or
    nesting deeper than 64)."""
    s = bytes(text)
    n = len(s)
    i = pairs = 0
    frames: list[list[bytes] | None] = []  # None: an array
    while i < n:
        c = s[i]
        if c == 34:
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
            j = i
            while j < n and s[j] in _WS:
                j += 1
            if j < n and s[j] == 58 and frames and frames[-1] is not None:
                if escaped:
                    return UNSURE
                pairs += 1
                keys = frames[-1]
                if len(keys) >= MAX_KEYS:
                    return UNSURE
                key = s[start:end]
                if key in keys:
                    return DUPLICATE
                keys.append(key)
                i = j + 1
        elif c == 123 or c == 91:
            if len(frames) >= MAX_DEPTH:
                return UNSURE
            frames.append([] if c == 123 else None)
            i += 1
        elif c == 125 or c == 93:
            if frames:
                frames.pop()
            i += 1
        else:
            i += 1
    return pairs
