"""The Ed25519 checks of a page's QR codes, on a helper thread ahead of the decisions that need them.

Each document's QR check (libsodium's Ed25519, ~47 us here) was a third of the worker's time per
document, on the one thread that also decides. `Ahead` hands a page's checks to a helper thread that
runs them in order in the compiled loop (ext/signatures.pyx, which releases the GIL for the whole
page and writes each answer into a shared byte as it goes) while the decisions go on; a decision
reads its answer there, or checks its QR itself when the helper has not reached it (at the page's
start, or always with the twin, which holds the GIL: no helper then). The answers are the same as
checking one by one (tests/test_taxfree_signatures.py): only where the work happens changes.

CUSTOMS_TAXFREE_VERIFY_THREADS (default 1; 0: every check on the deciding thread). A page's checks run on
one helper; more threads only let a page's helper start while the last page's is still stopping.
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from types import ModuleType

from stream._backend import backend as _backend_of_name, load_kernel
from stream.settings import env

kernel: ModuleType = load_kernel("signatures", "stream.taxfree._signatures", "stream.taxfree._signatures_py")

log = logging.getLogger(__name__)


def backend() -> str:
    return _backend_of_name("signatures")


def _sign_open_address() -> int:
    """libsodium's crypto_sign_open, as PyNaCl's binding holds it (its import initialised libsodium)."""
    import nacl.bindings  # noqa: F401  (sodium_init)
    from nacl._sodium import ffi, lib

    return int(ffi.cast("uintptr_t", ffi.addressof(lib, "crypto_sign_open")))


_ADDRESS = _sign_open_address()


def open_all(signed: list[bytes], keys: list[bytes]) -> bytes:
    """1 per message that verifies with its key (see ext/signatures.pyx), else 0."""
    return kernel.open_all(signed, keys, _ADDRESS)


def threads() -> int:
    try:
        return max(0, int(env("CUSTOMS_TAXFREE_VERIFY_THREADS")))
    except ValueError:  # not a number: the default
        return 1


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor | None:
    global _pool
    count = threads()
    if count == 0:
        return None
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=count, thread_name_prefix="taxfree-signatures")
        return _pool


class Ahead:
    """The checks of (signed message, key) jobs, run in order on a helper thread while they are
    decided: `verified(i)` reads job i's answer, or checks it on the calling thread when the helper
    has not reached it yet (never waiting for the helper)."""

    def __init__(self, signed: list[bytes], keys: list[bytes]):
        self.signed, self.keys = signed, keys
        # per job 0 (not checked yet), 1 (verifies) or 2 (does not); the last byte tells the helper to stop
        self.state = bytearray(len(signed) + 1)
        self.future: Future | None = None
        pool = _executor() if len(signed) > 1 and backend() == "compiled" else None  # the twin holds the GIL
        if pool is not None:
            started = threading.Event()
            self.future = pool.submit(self._run, started)
            self.future.add_done_callback(_log_failure)
            # hand the GIL over once: the helper needs it to start, then runs without it
            started.wait(0.01)

    def _run(self, started: threading.Event) -> None:
        started.set()
        kernel.open_each(self.signed, self.keys, _ADDRESS, self.state)

    def verified(self, index: int) -> bool:
        answer = self.state[index]
        if answer == 0:
            answer = 1 if open_all([self.signed[index]], [self.keys[index]])[0] else 2
            self.state[index] = answer
        return answer == 1

    def close(self) -> None:
        """The helper stops at its next job (the page is decided)."""
        self.state[-1] = 1


def _log_failure(future: Future) -> None:
    if not future.cancelled() and future.exception() is not None:  # the deciding thread checked them itself
        log.error("taxfree: the helper's signature checks failed: %r", future.exception())
