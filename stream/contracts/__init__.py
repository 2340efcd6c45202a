"""Message contracts: runtime validation that matches schemas/*.json, the contract registry
(registry.py), rejection reasons (reasons.py) and the `Rejected` exception (rejected.py)."""
from stream.contracts.rejected import Rejected

__all__ = ["Rejected"]
