"""Local content, CT-KZ (seed 003): the domestic-value share of a product under the formula in force.

``assess(request, rules=None)`` answers one `local-content-request/1` (a parsed JSON object) with a
`local-content/1` or a `rejection/1`, exactly as ``customs-stream local-content`` does per line;
``load_rules(directory)`` reads replacement rule files (see stream/localcontent/rules.py).
"""
from __future__ import annotations

from stream.localcontent.rules import LocalContentRules, RulesError, load_rules
from stream.localcontent.share import assess, max_foreign_cost

__all__ = ["LocalContentRules", "RulesError", "assess", "load_rules", "max_foreign_cost"]
