"""The one check every bad-input matrix makes of the real CLI: the exit code, no traceback, and a short message."""

from __future__ import annotations

from typing import Iterable

import pytest

from compress.cli.main import main


def expect_one_line_error(capsys, argv: list[str], code: int, needles: Iterable[str], case: str = "",
                          starts: tuple[str, ...] = ("error:", "Error:")) -> tuple[list[str], str]:
    """Run ``edgepress ARGV`` through its entry point and check: exit ``code``, no traceback, a message of 1 to 3
    lines from the first line starting with ``starts`` that holds every needle. Returns (stderr lines, message)."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    assert exc.value.code == code, (case, err[-2000:])
    assert "Traceback" not in err + out
    lines = err.strip().splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.startswith(starts)), None)
    assert start is not None, err
    message = lines[start:]
    assert 1 <= len(message) <= 3, err
    text = " ".join(message)
    for needle in needles:
        assert needle in text, (needle, err)
    return lines, text
