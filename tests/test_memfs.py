"""`clean`, `tokenizer train` and `tokenize` with every input and output on a non-local Beam
FileSystem (`memfs://`, tests/memfs.py, an object store in memory) write what they write on local
disk: every data path goes through Beam FileSystems."""
import gzip
import json

import pytest

from pipeline.__main__ import main as pipeline_main
from tests import memfs
from tests.test_end_to_end import REPO
from tokenizer.__main__ import main as tokenizer_main

DOCS_PER_FILE = 12


def _inputs() -> dict[str, bytes]:
    """Small JSONL inputs whose records carry their own ids, so that ids do not depend on where the
    files lie; one file is named by an @list, the others sit in a folder."""
    with gzip.open(REPO / "data/sample/jsonl/dolma-CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz") as f:
        lines = [next(f) for _ in range(3 * DOCS_PER_FILE)]
    chunks = [b"".join(lines[k:k + DOCS_PER_FILE]) for k in range(0, len(lines), DOCS_PER_FILE)]
    return {"in/list.txt": b"# one entry, relative to the list\nfirst.jsonl\n",
            "in/first.jsonl": chunks[0],
            "in/more/second.jsonl.gz": gzip.compress(chunks[1], mtime=0),
            "in/more/third.jsonl": chunks[2]}


def _commands(root: str) -> list[tuple]:
    return [
        (pipeline_main, ["clean", "--input", f"@{root}in/list.txt", f"{root}in/more", "--output", f"{root}out",
                         "--workers", "1", "--num-shards", "2"]),
        (tokenizer_main, ["train", "--input", f"{root}out/cleaned", "--output", f"{root}tok", "--vocab-size", "600",
                          "--num-threads", "1"]),
        (pipeline_main, ["tokenize", "--input", f"{root}out/cleaned", "--tokenizer", f"{root}tok",
                         "--output", f"{root}shards", "--num-shards", "2"]),
    ]


def _readable(name: str, content: bytes) -> bytes:
    return gzip.decompress(content) if name.endswith(".gz") else content


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """name -> (bytes written on memfs://, bytes written on local disk), paths made comparable."""
    local = tmp_path_factory.mktemp("local")
    memfs.clear()
    for name, content in _inputs().items():
        memfs.put(f"memfs://{name}", content)
        (local / name).parent.mkdir(parents=True, exist_ok=True)
        (local / name).write_bytes(content)
    for root in ("memfs://", f"{local}/"):
        for main, args in _commands(root):
            assert main(args) == 0, (root, args)
    on_memfs = {path.removeprefix("memfs://"): memfs.get(path) for path in memfs.paths()
                if not path.startswith("memfs://in/")}
    on_disk = {str(path.relative_to(local)): path.read_bytes() for path in local.rglob("*")
               if path.is_file() and not str(path.relative_to(local)).startswith("in/")}
    yield {name: (_readable(name, on_memfs[name]).replace(b"memfs://", b""),
                  _readable(name, on_disk[name]).replace(f"{local}/".encode(), b""))
           for name in on_memfs.keys() | on_disk.keys() if name in on_memfs and name in on_disk}, on_memfs, on_disk
    memfs.clear()


def test_the_same_files_are_written_on_memfs_as_on_local_disk(outputs):
    _, on_memfs, on_disk = outputs
    assert sorted(on_memfs) == sorted(on_disk)
    assert {"out/cleaned/_SUCCESS", "out/cleaned/part-00000.jsonl.gz", "out/rejected/part-00001.jsonl.gz",
            "out/stats.json", "out/report.html", "tok/tokenizer.model", "tok/tokenizer_meta.json",
            "shards/manifest.json", "shards/train-00000.bin", "shards/train-00000.idx"} <= set(on_memfs)
    assert not [name for name in on_memfs if ".tmp-" in name or name.startswith("out/.work")]


def test_every_output_has_the_same_content_on_memfs_as_on_local_disk(outputs):
    comparable, _, _ = outputs
    differing = [name for name, (from_memfs, from_disk) in comparable.items() if from_memfs != from_disk]
    assert differing in ([], ["out/timing.json"])   # how long each run took differs, and nothing else


def test_token_shards_and_tokenizer_model_are_byte_identical(outputs):
    _, on_memfs, on_disk = outputs
    for name in on_memfs:
        if name.endswith((".bin", ".idx", ".model")):
            assert on_memfs[name] == on_disk[name], name


def test_the_memfs_run_read_every_input_document(outputs):
    _, on_memfs, _ = outputs
    stats = json.loads(on_memfs["out/stats.json"])
    assert stats["input_docs"] == 3 * DOCS_PER_FILE
    assert stats["kept_docs"] > 0 and stats["input_docs"] == stats["kept_docs"] + sum(stats["rejected"].values())
    assert sorted(stats["sources"]) == ["memfs://in/first.jsonl", "memfs://in/more/second.jsonl.gz",
                                        "memfs://in/more/third.jsonl"]
