"""Message contracts: runtime validation that matches schemas/*.json, and rejection reasons."""
