"""The dedup stage in real Beam pipelines (FnApiRunner), and its connected-components transform."""
from __future__ import annotations

import gzip
import json
import random
from collections import Counter
from pathlib import Path

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from pipeline.config import DedupConfig
from pipeline.stages.components import ConnectedComponents, large_star, small_star
from pipeline.document import FINGERPRINT, JOURNAL_REF, TRAIL
from pipeline.resume import unit_key
from pipeline.stages.dedup import (Deduplicate, DeduplicateJournaled, Fingerprint, candidate_pairs, exact_key,
                                   linked_members, shared_digests)
from pipeline.stages.journal import JournalUnits, ReplayJournals
from pipeline.stages.routing import KEPT
from pipeline.stages.sorted_rows import sort_rows
from pipeline.units import Unit
from pipeline.text.line_dedup import line_key, line_keys
from pipeline.text.shingles import jaccard, shingle_hashes

ROOT = Path(__file__).resolve().parent.parent
WORDS = (ROOT / "tests" / "data" / "dedup" / "tinyshakespeare-head.txt").read_text(encoding="utf-8").split()
DOLMA = ROOT / "data" / "sample" / "jsonl" / "dolma-CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"
UDHR_ZH = (ROOT / "data" / "sample" / "text" / "udhr" / "zh.txt").read_text(encoding="utf-8")


def passage(start: int, length: int) -> str:
    return " ".join(WORDS[start:start + length])


def similarity(a: str, b: str) -> float:
    return jaccard(shingle_hashes(a, 5, 5), shingle_hashes(b, 5, 5))


def run_beam(build, tmp_path: Path, name: str) -> tuple[dict[str, list], dict[str, int]]:
    """Run `build(pipeline) -> {output name: PCollection of JSON-able}`; read every output back,
    with the largest value of each distribution metric the pipeline reported."""
    pipeline = beam.Pipeline(runner=FnApiRunner())
    for label, pcoll in build(pipeline).items():
        _ = (pcoll | f"Json{label}" >> beam.Map(json.dumps, sort_keys=True)
             | f"Write{label}" >> beam.io.WriteToText(str(tmp_path / f"{name}-{label}"), shard_name_template=""))
    result = pipeline.run()
    result.wait_until_finish()
    largest = {f"{found.key.metric.namespace}/{found.key.metric.name}": found.committed.max
               for found in result.metrics().query()["distributions"]}
    outputs = {label: sorted((json.loads(line) for line in (tmp_path / f"{name}-{label}").read_text().splitlines()),
                             key=lambda record: json.dumps(record, sort_keys=True))
               for label in ("kept", "rejected")}
    return outputs, largest


def run_dedup(docs: list[dict], config: DedupConfig, tmp_path: Path, name: str = "dedup") -> tuple[list, list]:
    return run_dedup_with_metrics(docs, config, tmp_path, name)[:2]


def run_dedup_with_metrics(docs: list[dict], config: DedupConfig, tmp_path: Path,
                           name: str = "dedup") -> tuple[list, list, dict[str, int]]:
    def build(pipeline):
        kept, rejected = pipeline | "Docs" >> beam.Create(docs) | Deduplicate(config, str(tmp_path / f"{name}-work"))
        return {"kept": kept, "rejected": rejected}

    out, largest = run_beam(build, tmp_path, name)
    return out["kept"], out["rejected"], largest


def scenario_docs() -> list[dict]:
    """Small corpus in which every kind of duplicate, and hard negatives, occur once."""
    near = passage(2000, 300)
    near_edited = near.replace("the", "thee", 2).replace(",", " ,", 5).upper()
    docs = {
        "exact-a": passage(0, 200), "exact-b": passage(0, 200), "exact-c": passage(0, 200) + "\n",
        "near-a": near, "near-b": near_edited, "near-b-copy": near_edited,
        "chain-a": passage(3000, 400), "chain-b": passage(3030, 400), "chain-c": passage(3060, 400),
        # hard negatives: 40% of their words in common
        "negative-a": passage(4000, 120) + " " + passage(4200, 180),
        "negative-b": passage(4000, 120) + " " + passage(4500, 180),
        "other-1": passage(5000, 250), "other-2": passage(5400, 250), "short": "To be, or not",
        "zh-a": UDHR_ZH[:600], "zh-b": UDHR_ZH[:600].replace("联合国", "聯合國", 1),
    }
    return [{"id": doc_id, "source": "test", "text": text, **({"lang": "zh"} if doc_id.startswith("zh") else {})}
            for doc_id, text in docs.items()]


@pytest.fixture(scope="module")
def scenario_run(tmp_path_factory):
    return run_dedup_with_metrics(scenario_docs(), DedupConfig(max_cc_rounds=8), tmp_path_factory.mktemp("scenario"))


@pytest.fixture(scope="module")
def scenario(scenario_run):
    return scenario_run[:2]


def verdicts(rejected: list[dict]) -> dict[str, tuple[str, str]]:
    return {record["id"]: (record["reason"], record["duplicate_of"]) for record in rejected}


def test_scenario_premises():
    texts = {doc["id"]: doc["text"] for doc in scenario_docs()}
    assert similarity(texts["chain-a"], texts["chain-b"]) >= 0.8
    assert similarity(texts["chain-b"], texts["chain-c"]) >= 0.8
    assert similarity(texts["chain-a"], texts["chain-c"]) < 0.8
    assert similarity(texts["negative-a"], texts["negative-b"]) < 0.3
    assert 0.8 <= similarity(texts["near-a"], texts["near-b"]) < 1.0


def test_exact_duplicates_keep_the_lowest_id(scenario):
    kept, rejected = scenario
    assert "exact-a" in {doc["id"] for doc in kept}
    found = verdicts(rejected)
    assert found["exact-b"] == ("exact_duplicate", "exact-a")
    assert found["exact-c"] == ("exact_duplicate", "exact-a")  # outer whitespace does not count


def test_near_duplicates_and_chains_form_one_cluster(scenario):
    _, rejected = scenario
    found = verdicts(rejected)
    assert found["near-b"] == ("near_duplicate", "near-a")
    # an exact copy of a near duplicate points to the document its cluster keeps
    assert found["near-b-copy"] == ("exact_duplicate", "near-a")
    # chain-a and chain-c are not similar, but both are similar to chain-b
    assert found["chain-b"] == ("near_duplicate", "chain-a")
    assert found["chain-c"] == ("near_duplicate", "chain-a")
    assert found["zh-b"] == ("near_duplicate", "zh-a")  # character shingles


def test_hard_negatives_and_unrelated_documents_are_kept(scenario):
    kept, rejected = scenario
    assert {doc["id"] for doc in kept} == {"exact-a", "near-a", "chain-a", "negative-a", "negative-b",
                                           "other-1", "other-2", "short", "zh-a"}
    assert len(kept) + len(rejected) == len(scenario_docs())
    by_id = {doc["id"]: doc for doc in scenario_docs()}
    for record in rejected:  # rejection records carry the text and provenance, nothing is lost
        assert record["stage"] == "dedup" and record["text"] == by_id[record["id"]]["text"]
    assert all(doc == by_id[doc["id"]] for doc in kept)


def test_stage_reports_what_its_steps_hold(scenario_run):
    *_, largest = scenario_run
    docs = scenario_docs()
    longest = max(len(shingle_hashes(doc["text"], 5, 5, doc.get("lang"))) for doc in docs)
    assert largest["dedup/shingle_set_bytes"] == 8 * longest
    assert largest["dedup/exact_group_size"] == 3  # exact-a, exact-b, exact-c
    assert 3 <= largest["dedup/lsh_bucket_size"] <= 4  # the chain; near-b-copy left with the exact step
    assert largest["dedup/verify_shingle_bytes"] >= 2 * 8 * (300 - 4)
    assert largest["connected_components/neighbourhood_size"] == 3  # chain-b with chain-a and chain-c


def test_output_does_not_depend_on_input_order(scenario, tmp_path):
    docs = scenario_docs()
    random.Random(5).shuffle(docs)
    assert run_dedup(docs, DedupConfig(max_cc_rounds=8), tmp_path) == scenario


def test_highest_score_policy_and_unverified_lsh(tmp_path):
    text = passage(6000, 300)
    docs = [
        {"id": "a", "text": text, "quality_model_score": 0.2},
        {"id": "b", "text": text.replace("the", "a", 1), "quality_model_score": 0.9},
        {"id": "c", "text": text.replace("and", "or", 1)},  # no score: never preferred
        {"id": "d", "text": text, "quality_model_score": 0.5},
    ]
    config = DedupConfig(keep="highest_score", verify_jaccard=False, max_cc_rounds=6)
    kept, rejected = run_dedup(docs, config, tmp_path)
    assert [doc["id"] for doc in kept] == ["b"]
    assert verdicts(rejected) == {"a": ("exact_duplicate", "b"), "c": ("near_duplicate", "b"),
                                  "d": ("near_duplicate", "b")}


def test_exact_only_keeps_near_duplicates(tmp_path):
    docs = [doc for doc in scenario_docs() if doc["id"].startswith(("exact", "near"))]
    kept, rejected = run_dedup(docs, DedupConfig(near=False), tmp_path)
    assert [doc["id"] for doc in kept] == ["exact-a", "near-a", "near-b"]
    assert verdicts(rejected) == {"exact-b": ("exact_duplicate", "exact-a"), "exact-c": ("exact_duplicate", "exact-a"),
                                  "near-b-copy": ("exact_duplicate", "near-b")}


def test_real_common_crawl_duplicates(tmp_path):
    with gzip.open(DOLMA, "rt", encoding="utf-8") as lines:
        docs = [{key: record[key] for key in ("id", "source", "text")} for record in map(json.loads, lines)]
    kept, rejected = run_dedup(docs, DedupConfig(max_cc_rounds=8), tmp_path)
    distinct_texts = len({doc["text"].strip() for doc in docs})
    reasons = Counter(record["reason"] for record in rejected)
    assert reasons["exact_duplicate"] == len(docs) - distinct_texts == 35
    assert len(kept) + len(rejected) == len(docs) == 697
    near = [record for record in rejected if record["reason"] == "near_duplicate"]
    assert len(near) >= 1
    texts = {doc["id"]: doc["text"] for doc in docs}
    kept_ids = {doc["id"] for doc in kept}
    for record in rejected:
        assert record["duplicate_of"] in kept_ids
    for record in near:
        assert similarity(texts[record["id"]], texts[record["duplicate_of"]]) >= 0.8


def test_candidate_pairs_per_bucket():
    nodes = [(0.0, name, "h") for name in "dcba"]
    a, b, c, d = sorted(nodes)
    assert candidate_pairs(nodes, verify=False, all_pairs_limit=10) == [(a, b), (a, c), (a, d)]
    assert len(candidate_pairs(nodes, verify=True, all_pairs_limit=10)) == 6
    assert candidate_pairs(nodes, verify=True, all_pairs_limit=3) == [(a, b), (a, c), (a, d), (b, c), (c, d)]
    assert candidate_pairs(nodes[:1], verify=True, all_pairs_limit=10) == []


def test_linked_members_checks_only_pairs_not_yet_joined():
    a, b, c, d, e = [(0.0, name, "h") for name in "abcde"]
    checked = []

    def similar(x, y):
        checked.append((x[1], y[1]))
        return e not in (x, y)

    pairs = candidate_pairs([e, d, c, b, a], verify=True, all_pairs_limit=10)
    assert linked_members(pairs, similar) == [(b, a), (c, a), (d, a)]
    assert checked == [("a", "b"), ("a", "c"), ("a", "d"), ("a", "e"), ("b", "e"), ("c", "e"), ("d", "e")]
    # a cluster's smallest member is its root, whenever it joins
    assert linked_members([(c, d), (b, c), (d, a)], lambda x, y: True) == [(b, a), (c, a), (d, a)]
    assert linked_members([(a, b), (c, d)], lambda x, y: True) == [(b, a), (d, c)]
    assert linked_members([(a, b)], lambda x, y: False) == []


def test_exact_keys_sort_as_the_nodes_of_one_content_do():
    # exact groups are sorted on disk by these strings; the first must be the smallest node
    ranks = [0.0, -0.0 + 0.0, 1.5, -1.5, -1e-300, 1e-300, 2.0**60, -(2.0**60), float("inf"), -0.25]
    ids = ["a", "ab", "b", "", "é", "a\U0001F600", "B"]
    nodes = [(rank, doc_id, "f" * 32) for rank in ranks for doc_id in ids]
    random.Random(3).shuffle(nodes)
    assert sorted(nodes, key=exact_key) == sorted(nodes)
    assert all(exact_key(node).startswith("f" * 32) for node in nodes)


def test_star_steps():
    assert large_star(3, [1, 5, 7, 3]) == ([(5, 1), (7, 1)], False)
    assert large_star(1, [5, 7]) == ([(5, 1), (7, 1)], True)
    assert small_star(7, [3, 5]) == [(5, 3), (7, 3)]


def reference_components(edges: list[tuple[int, int]]) -> dict[int, int]:
    parent: dict[int, int] = {}

    def find(node):
        while parent.setdefault(node, node) != node:
            node = parent[node]
        return node

    for u, v in edges:
        parent[max(find(u), find(v))] = min(find(u), find(v))
    return {node: find(node) for node in list(parent) if find(node) != node}


def run_components(edges, max_rounds: int, tmp_path: Path) -> dict[int, int]:
    def build(pipeline):
        roots = pipeline | beam.Create(edges) | ConnectedComponents(max_rounds)
        return {"kept": roots, "rejected": pipeline | "None" >> beam.Create([])}

    return dict(map(tuple, run_beam(build, tmp_path, "components")[0]["kept"]))


def long_path_and_random_graph() -> list[tuple[int, int]]:
    rng = random.Random(11)
    labels = rng.sample(range(1000, 2000), 60)
    edges = list(zip(labels, labels[1:]))  # a path whose labels are in random order
    edges += [(rng.randrange(100), rng.randrange(100)) for _ in range(70)]  # sparse random graph
    return edges


def test_connected_components_match_union_find(tmp_path):
    edges = long_path_and_random_graph()
    assert run_components(edges, 10, tmp_path) == reference_components(edges)


def test_connected_components_fail_loudly_when_rounds_run_out(tmp_path):
    with pytest.raises(Exception, match="did not converge in 1 rounds"):
        run_components(long_path_and_random_graph(), 1, tmp_path)


def test_line_dedup_keeps_boilerplate_lines_in_the_first_document_only(tmp_path):
    with gzip.open(DOLMA, "rt", encoding="utf-8") as lines:
        docs = [{key: record[key] for key in ("id", "source", "text")} for record in map(json.loads, lines)]
    kept, rejected = run_dedup(docs, DedupConfig(line_dedup=True), tmp_path)
    assert len(kept) + len(rejected) == len(docs)
    reasons = Counter(record["reason"] for record in rejected)
    assert reasons["exact_duplicate"] == 35  # duplicates are found before lines are removed
    assert reasons["line_dedup_empty"] >= 1
    kept_ids = {doc["id"] for doc in kept}
    assert all(record["duplicate_of"] in kept_ids for record in rejected if "duplicate_of" in record)
    # no non-blank line is left in two kept documents, except in cluster keepers kept whole
    originals = {doc["id"]: doc["text"] for doc in docs}
    keepers = {record["duplicate_of"] for record in rejected if "duplicate_of" in record}
    whole = {doc["id"] for doc in kept if doc["id"] in keepers and doc["text"] == originals[doc["id"]]}
    holders = Counter(key for doc in kept if doc["id"] not in whole for key in line_keys(doc["text"]))
    assert holders and max(holders.values()) == 1
    # the navigation line of 40 wiki pages stays in the first of them that is kept
    navigation = line_key("Jump to navigation Jump to search")
    with_navigation = sorted(doc["id"] for doc in kept if navigation in line_keys(originals[doc["id"]]))
    assert len(with_navigation) > 2
    assert [doc["id"] for doc in kept if navigation in line_keys(doc["text"])] == with_navigation[:1]
    # what is left of a document are its own lines, in order
    for doc in kept:
        original = originals[doc["id"]].splitlines(keepends=True)
        remaining = iter(original)
        assert all(any(line == candidate for candidate in remaining) for line in doc["text"].splitlines(keepends=True))
    for record in rejected:
        if record["reason"] == "line_dedup_empty":
            assert record.get("text") == originals[record["id"]]


def test_records_repeating_an_id_and_a_text_keep_the_first_by_content(tmp_path):
    # a malformed input: the same id and text more than once; those records are grouped to be told apart
    text = passage(6000, 150)
    docs = [{"id": "a", "text": text, "n": 2}, {"id": "a", "text": text, "n": 1}, {"id": "a", "text": text, "n": 1},
            {"id": "b", "text": text}, {"id": "c", "text": passage(7000, 150)}]
    kept, rejected = run_dedup(docs, DedupConfig(), tmp_path)
    assert sorted((doc["id"], doc.get("n")) for doc in kept) == [("a", 1), ("c", None)]
    assert sorted((r["id"], r["reason"], r["duplicate_of"]) for r in rejected) == [
        ("a", "exact_duplicate", "a"), ("a", "exact_duplicate", "a"), ("b", "exact_duplicate", "a")]


def test_deduplicating_journals_decides_as_deduplicating_the_documents(tmp_path):
    # the local second pass reads the kept journals three times instead of holding the documents
    config = DedupConfig(max_cc_rounds=8)
    docs = scenario_docs() + [{"id": "near-b-copy", "source": "test", "text": "a record repeating an id"}] * 2
    work, unit = str(tmp_path / ".work"), Unit("test", 0, 1)
    with beam.Pipeline(runner=FnApiRunner()) as pipeline:
        trailed = [{**doc, TRAIL: (unit_key(unit), ())} for doc in docs]
        fingerprinted = pipeline | "Docs" >> beam.Create(trailed) | Fingerprint(config)
        (fingerprinted, pipeline | "NoRejections" >> beam.Create([])) | JournalUnits(work)

    def build(pipeline):
        replayed = pipeline | ReplayJournals(work, [unit])
        kept, rejected = replayed[KEPT] | DeduplicateJournaled(config, work, [unit])
        return {"kept": kept | "AllKept" >> beam.Flatten(), "rejected": rejected | "AllRejected" >> beam.Flatten()}

    from_journals, _ = run_beam(build, tmp_path, "journaled")
    kept, rejected = run_dedup(docs, config, tmp_path)
    assert sorted(doc["id"] for doc in from_journals["kept"]) == sorted(doc["id"] for doc in kept)
    assert verdicts(from_journals["rejected"]) == verdicts(rejected)
    assert len(from_journals["rejected"]) == len(rejected) > len(verdicts(rejected))
    assert all(FINGERPRINT not in doc and JOURNAL_REF in doc for doc in from_journals["kept"])


def test_shared_digests_are_what_two_documents_hold_of_each_kind():
    # count rows: (digest, kind), kind 0 a content hash, 1 a band key, 2 a document key
    rows = np.array([[5, 0], [5, 0], [5, 1], [9, 1], [9, 1], [9, 1], [2**64 - 1, 2], [2**64 - 1, 2], [3, 2]],
                    dtype=np.uint64)
    shared = shared_digests([sort_rows(rows[:4]), sort_rows(rows[4:])])
    assert [kind.tolist() for kind in shared] == [[5], [9], [2**64 - 1]]
    assert all(kind.dtype == np.uint64 for kind in shared)
    assert [kind.tolist() for kind in shared_digests([])] == [[], [], []]
