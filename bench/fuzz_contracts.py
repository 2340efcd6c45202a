"""Coverage-guided fuzzing of the contract validator with atheris (optional, not a dependency).

    pip install atheris
    python bench/fuzz_contracts.py -atheris_runs=1000000

Any exception escaping parse_json_line/validate is a bug; so is a reason code outside REASONS.
"""
from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from stream.contracts.reasons import REASONS
    from stream.contracts.validate import parse_json_line, ref_of, validate, validate_document


def one_input(raw: bytes) -> None:
    doc = parse_json_line(raw)
    if isinstance(doc, tuple):
        assert doc[0] in REASONS, doc
        return
    for check in (validate, validate_document):
        result = check(doc)
        if result is not None:
            assert result[0] in REASONS, result
    ref_of(doc)


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
