# Compiled Ed25519 checks of a batch of signed messages, without the GIL: the tax-free QR codes of a
# page (stream/taxfree/signatures.py). Twin: stream/taxfree/_signatures_py.py.
#
# A check through PyNaCl takes the GIL back after every signature, so a helper thread running them
# one call at a time waits for the GIL (up to the 5 ms switch interval) as often as it verifies and
# does not run beside the decisions. This loop releases the GIL once for the whole batch. It calls
# libsodium's crypto_sign_open by the address PyNaCl's own binding gives (the library the project
# already depends on, initialised by it): no header or library to build against.

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdlib cimport malloc, free

ctypedef int (*sign_open_t)(unsigned char *m, unsigned long long *mlen_p, const unsigned char *sm,
                            unsigned long long smlen, const unsigned char *pk) noexcept nogil

cdef enum:
    C_SIGNATURE_BYTES = 64
    C_KEY_BYTES = 32

SIGNATURE_BYTES = C_SIGNATURE_BYTES
KEY_BYTES = C_KEY_BYTES


cdef int _arrays(tuple signed, tuple keys, const unsigned char **messages, const unsigned char **publics,
                 unsigned long long *lengths, Py_ssize_t *longest) except -1:
    cdef Py_ssize_t i
    for i in range(len(signed)):
        message, key = signed[i], keys[i]
        if type(message) is not bytes or type(key) is not bytes:
            raise TypeError("signed messages and keys are bytes")
        if PyBytes_GET_SIZE(key) != C_KEY_BYTES:
            raise ValueError("an Ed25519 public key is 32 bytes")
        messages[i] = <const unsigned char *>PyBytes_AS_STRING(message)
        publics[i] = <const unsigned char *>PyBytes_AS_STRING(key)
        lengths[i] = PyBytes_GET_SIZE(message)
        if <Py_ssize_t>lengths[i] > longest[0]:
            longest[0] = lengths[i]
    return 0


def open_each(list signed, list keys, size_t address, unsigned char[::1] state):
    """Check every message whose ``state`` byte is 0 and set it to 1 (verifies with ``keys[i]``) or 2
    (does not), in order, without the GIL. ``state`` has one byte more than there are messages: once
    it is not 0, the loop stops. Another thread may read ``state`` meanwhile, and fill entries itself
    (each byte is only ever changed from 0 to its one answer, so the race is harmless)."""
    cdef Py_ssize_t n = len(signed), i, longest = 0
    if len(keys) != n or state.shape[0] != n + 1:
        raise ValueError("one key and one state byte per signed message, and the stop byte")
    if address == 0:
        raise ValueError("no crypto_sign_open")
    held = tuple(signed), tuple(keys)  # the buffers stay alive while the GIL is released
    cdef const unsigned char **messages = <const unsigned char **>malloc(max(n, 1) * sizeof(char *))
    cdef const unsigned char **publics = <const unsigned char **>malloc(max(n, 1) * sizeof(char *))
    cdef unsigned long long *lengths = <unsigned long long *>malloc(max(n, 1) * sizeof(unsigned long long))
    cdef unsigned char *scratch = NULL
    cdef unsigned long long opened
    cdef sign_open_t sign_open = <sign_open_t>address
    cdef volatile unsigned char *flags = &state[0]
    try:
        if messages == NULL or publics == NULL or lengths == NULL:
            raise MemoryError()
        _arrays(held[0], held[1], messages, publics, lengths, &longest)
        scratch = <unsigned char *>malloc(longest + 1)
        if scratch == NULL:
            raise MemoryError()
        with nogil:
            for i in range(n):
                if flags[n] != 0:
                    break
                if flags[i] != 0:
                    continue
                # shorter than a signature: not a signed message (libsodium refuses it too)
                if lengths[i] >= C_SIGNATURE_BYTES and sign_open(scratch, &opened, messages[i], lengths[i],
                                                                 publics[i]) == 0:
                    flags[i] = 1
                else:
                    flags[i] = 2
    finally:
        free(messages)
        free(publics)
        free(lengths)
        free(scratch)


def open_all(list signed, list keys, size_t address):
    """One byte per message: 1 when ``signed[i]`` (signature || message, libsodium's signed form)
    verifies with the Ed25519 public key ``keys[i]`` (32 bytes), else 0. ``address``: libsodium's
    crypto_sign_open."""
    if len(keys) != len(signed):
        raise ValueError("one key per signed message")
    state = bytearray(len(signed) + 1)
    open_each(signed, keys, address, state)
    return bytes(b & 1 for b in state[:len(signed)])
