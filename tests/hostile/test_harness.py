"""The harness itself catches what it promises to catch (a clobbered bystander, a wrong exit status)."""

from __future__ import annotations

import pytest


def test_harness_accepts_a_clean_run(hostile) -> None:
    result = hostile.run(*hostile.apply_args("refined", "--method", "identity"), exit=0, out=["refined"])
    assert {"refined", "refined/0001.png", "refined/0002.png", "refined/0003.png"} <= result.changed


def test_harness_catches_a_changed_bystander(hostile) -> None:
    with pytest.raises(AssertionError, match="changed outside"):
        hostile.run(
            *hostile.apply_args("refined", "--method", "identity"),
            exit=0,
            prelude="open('notes.txt', 'w').write('clobbered')",
        )


def test_harness_catches_a_wrong_exit_status(hostile) -> None:
    with pytest.raises(AssertionError, match="exit 2"):
        hostile.run("apply", "--masks", "nope", "--images", "images", "--out", "o", exit=0)
