"""The CLI's help is as wide as the terminal says (``$COLUMNS``, else the terminal, else 80),
without argparse's formatter importing shutil for every option it adds (issue 15)."""

from __future__ import annotations

import pytest

from smpsim import cli


def _help_lines(argv: list[str], capsys: pytest.CaptureFixture[str]) -> list[str]:
    with pytest.raises(SystemExit):
        cli._parser(argv[0]).parse_args([*argv, "--help"])
    return capsys.readouterr().out.splitlines()


@pytest.mark.parametrize("columns", [60, 100, 200])
def test_help_fills_the_columns_it_is_given(columns: int, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    lines = _help_lines(["run"], capsys)
    assert max(map(len, lines)) <= columns - 2
    assert max(map(len, lines)) > columns - 20  # the width is used, not a narrower default


@pytest.mark.parametrize("columns", [None, "0", "wide"])
def test_without_a_usable_width_help_is_80_columns(columns: str | None,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    lines = _help_lines(["run"], capsys)  # (standard output is captured: no terminal)
    assert 70 < max(map(len, lines)) <= 78
