"""One error root: bad input is a TranscendError (a one-line message), anything else a traceback."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import transcend
import transcend.cli as cli_module
from transcend.data import DataError
from transcend.errors import TranscendError
from transcend.experts import ExpertCrashed


def test_every_error_class_of_the_package_derives_from_the_root():
    found = []
    for info in pkgutil.walk_packages(transcend.__path__, "transcend."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if isinstance(value, type) and issubclass(value, Exception) and value.__module__ == info.name \
                    and name.endswith("Error"):
                found.append(value)
                assert issubclass(value, TranscendError), f"{info.name}.{name}"
    assert len(found) >= 15


def test_a_crashed_expert_is_not_a_value_error():
    assert issubclass(ExpertCrashed, TranscendError) and not issubclass(ExpertCrashed, ValueError)


def test_the_cli_turns_only_transcend_errors_into_one_line(monkeypatch, capsys):
    def fails_with(exc):
        def command(**_):
            raise exc
        return command

    monkeypatch.setattr(cli_module, "cli", fails_with(DataError("games.pgn: no games\n found")))
    with pytest.raises(SystemExit) as exit_info:
        cli_module.main()
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == "transcend: error: games.pgn: no games found\n"

    monkeypatch.setattr(cli_module, "cli", fails_with(ValueError("a bug in a library")))
    with pytest.raises(ValueError, match="a bug in a library"):
        cli_module.main()
