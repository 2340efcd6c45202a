"""`Rejected(reason, detail)`: the one exception for input that gets a `rejection/1` instead of a result.

Validators return ``(reason, detail)``; code deeper in a domain (an assessment, a state check)
raises `Rejected`, and the page handler turns it into the item's rejection with
`rejection.as_rejection(ref)`. The reason must be a code of stream/contracts/reasons.py, so a
typo fails where it is raised, not in a consumer. The detail names the field and why, never a
personal value (IIN, name, passport, card token).
"""
from __future__ import annotations

from stream.contracts.reasons import REASONS, rejection


class Rejected(Exception):
    def __init__(self, reason: str, detail: str):
        if reason not in REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail

    @classmethod
    def of(cls, problem: tuple[str, str]) -> "Rejected":
        """From a validator's ``(reason, detail)``."""
        return cls(*problem)

    def as_rejection(self, ref: str | None) -> dict:
        return rejection(ref, self.reason, self.detail)
