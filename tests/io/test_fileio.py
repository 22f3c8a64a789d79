"""Safe reading and atomic writing of user files: every failure is an InputError (exit 2), never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llmreplay.errors import InputError
from llmreplay.fileio import MAX_YAML_ALIASES, atomic_write, parse_json, parse_yaml, read_structured, read_text


def test_non_utf8_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "cfg.yaml"
    p.write_bytes(b"a: 1\nb: \xff\xfe\n")
    with pytest.raises(InputError, match=r"cfg.yaml is not UTF-8 text \(line 2"):
        read_text(p, "--config")


def test_bom_is_accepted(tmp_path: Path) -> None:
    p = tmp_path / "cfg.json"
    p.write_bytes(b"\xef\xbb\xbf{\"a\": 1}")
    assert read_structured(p, "--config") == {"a": 1}


def test_yaml_alias_bomb_fails_fast() -> None:
    lines = ['a0: &a0 ["x", "x"]'] + [f"a{i}: &a{i} [*a{i-1}, *a{i-1}]" for i in range(1, 60)]
    with pytest.raises(InputError, match=f"more than {MAX_YAML_ALIASES} YAML aliases"):
        parse_yaml("\n".join(lines), "bomb.yaml")


def test_few_yaml_aliases_are_fine() -> None:
    assert parse_yaml("base: &b {x: 1}\nother: *b\n", "ok.yaml") == {"base": {"x": 1}, "other": {"x": 1}}


def test_deeply_nested_json_is_an_input_error() -> None:
    with pytest.raises(InputError, match="nested too deeply"):
        parse_json("[" * 100_000 + "]" * 100_000, "deep.json")


def test_folder_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a folder"):
        read_text(tmp_path, "--config")


def test_atomic_write_keeps_old_file_on_failure(tmp_path: Path) -> None:
    p = atomic_write(tmp_path / "out.json", "good\n")
    assert p.read_text() == "good\n"

    class Boom(Exception):
        pass

    class Bad(str):
        def encode(self, *a: object, **k: object) -> bytes:  # type: ignore[override]
            raise Boom

    with pytest.raises(Boom):
        atomic_write(p, Bad("x"))
    assert p.read_text() == "good\n"
    assert [f.name for f in tmp_path.iterdir()] == ["out.json"]  # no temp file left behind


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only folders")
def test_read_only_folder_is_an_input_error(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(InputError, match="cannot write"):
        atomic_write(ro / "x.json", "{}")


def test_parent_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    with pytest.raises(InputError, match="cannot write"):
        atomic_write(tmp_path / "f" / "x.json", "{}")


def test_atomic_write_gives_the_permissions_open_would(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        p = atomic_write(tmp_path / "report.json", "{}")
    finally:
        os.umask(old)
    assert p.stat().st_mode & 0o777 == 0o644  # readable by others, as a plain open() would make it
