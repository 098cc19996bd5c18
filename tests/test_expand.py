"""Source expansion on odd local trees: symlinked folders, links that loop, FIFOs and sockets, and
@list files that name themselves. Each gives a clear result at once, never a hang or a traceback."""
from __future__ import annotations

import os
import socket

import pytest

from pipeline.config import ReadConfig
from pipeline.sources import SourceError, expand_sources

CONFIG = ReadConfig()


def jsonl(path, text="a"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'{{"text": "{text}"}}\n')
    return str(path)


def test_symlinked_folder_is_followed_and_a_link_loop_entered_once(tmp_path):
    inside = jsonl(tmp_path / "corpus" / "a.jsonl")
    elsewhere = jsonl(tmp_path / "elsewhere" / "b.jsonl")
    os.symlink(tmp_path / "elsewhere", tmp_path / "corpus" / "linked")
    os.symlink(tmp_path / "corpus", tmp_path / "corpus" / "loop")          # points back up the tree
    found = expand_sources([str(tmp_path / "corpus")], CONFIG)
    assert found == [inside, str(tmp_path / "corpus" / "linked" / "b.jsonl")]
    assert os.path.realpath(found[1]) == elsewhere


def test_fifo_and_socket_in_a_folder_or_glob_are_skipped_with_a_warning(tmp_path, caplog):
    kept = jsonl(tmp_path / "corpus" / "a.jsonl")
    os.mkfifo(tmp_path / "corpus" / "pipe.jsonl")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "corpus" / "sock.jsonl"))
    try:
        assert expand_sources([str(tmp_path / "corpus")], CONFIG) == [kept]
        assert expand_sources([str(tmp_path / "corpus" / "*.jsonl")], CONFIG) == [kept]
    finally:
        server.close()
    assert "skipping 2 entries that are not regular files" in caplog.text and "pipe.jsonl" in caplog.text


@pytest.mark.parametrize("make, kind", [(os.mkfifo, "a FIFO"), (lambda p: os.symlink(p + ".gone", p), "a broken link")])
def test_a_fifo_or_broken_link_given_directly_is_one_clear_error(tmp_path, make, kind):
    path = str(tmp_path / "input.jsonl")
    make(path)
    with pytest.raises(SourceError, match=f"is not a regular file \\({kind}\\)") as error:
        expand_sources([path], CONFIG)
    assert "\n" not in str(error.value)


def test_list_file_that_includes_itself_is_one_clear_error(tmp_path):
    (tmp_path / "self.txt").write_text("@self.txt\n")
    with pytest.raises(SourceError, match="list file .*self.txt includes itself"):
        expand_sources([f"@{tmp_path / 'self.txt'}"], CONFIG)


def test_list_files_that_include_each_other_are_one_clear_error(tmp_path):
    jsonl(tmp_path / "a.jsonl")
    (tmp_path / "first.txt").write_text(f"a.jsonl\n@{tmp_path / 'second.txt'}\n")
    (tmp_path / "second.txt").write_text(f"@{tmp_path / 'first.txt'}\n")
    with pytest.raises(SourceError) as error:
        expand_sources([f"@{tmp_path / 'first.txt'}"], CONFIG)
    assert str(error.value) == (f"list file {tmp_path / 'first.txt'} includes itself: @{tmp_path / 'first.txt'} "
                                f"-> @{tmp_path / 'second.txt'} -> @{tmp_path / 'first.txt'}")


def test_one_list_named_twice_side_by_side_is_not_a_cycle(tmp_path):
    page = jsonl(tmp_path / "a.jsonl")
    (tmp_path / "inner.txt").write_text("a.jsonl\n")
    (tmp_path / "outer.txt").write_text(f"@{tmp_path / 'inner.txt'}\n@{tmp_path / 'inner.txt'}\n")
    assert expand_sources([f"@{tmp_path / 'outer.txt'}"], CONFIG) == [page]


def test_nested_list_named_relatively_is_found_beside_its_parent(tmp_path):
    page = jsonl(tmp_path / "lists" / "a.jsonl")
    (tmp_path / "lists" / "inner.txt").write_text("a.jsonl\n")
    (tmp_path / "lists" / "outer.txt").write_text("@inner.txt\n")
    assert expand_sources([f"@{tmp_path / 'lists' / 'outer.txt'}"], CONFIG) == [page]
