"""The fastText quality classifier: trained on a tiny real set, it separates held-out examples."""
import gzip
import json
import zlib
from pathlib import Path

import pytest

from common import config_io
from common.cli import OneLineParser
from common.config_io import ConfigError
from pipeline.commands import train_quality
from pipeline.config import QualityConfig, QualityModelConfig
from pipeline.text.fasttext_model import load_fasttext_model
from pipeline.text.lang import BUNDLED_MODEL
from pipeline.text.quality import QualityJudge, judge_quality
from pipeline.text.quality_model import (NEGATIVE, POSITIVE, NoExamplesError, TrainingOptions, positive_probability,
                                         train_classifier, training_lines)

SAMPLE = Path(__file__).resolve().parents[1] / "data/sample"
SMALL = TrainingOptions(dim=16, buckets=20_000)  # a small model file, quick to train


def texts_of(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def held_out(text: str) -> bool:
    return zlib.crc32(text.encode()) % 4 == 0


@pytest.fixture(scope="module")
def examples():
    """Positives: paragraphs of CCNet "head" documents and UDHR sentences (well-formed prose).
    Negatives: lines of raw crawled pages that do not end like a sentence (menus, addresses, markup)."""
    positives = [para for path in sorted((SAMPLE / "jsonl").glob("dolma-cc_en_head-*.jsonl.gz"))
                 for text in texts_of(path) for para in text.split("\n") if len(para) >= 200]
    positives += [line.strip() for line in (SAMPLE / "text/udhr/en.txt").read_text(encoding="utf-8").split("\n")
                  if len(line.strip()) >= 100]
    crawl = texts_of(next((SAMPLE / "jsonl").glob("dolma-CC-MAIN-*.jsonl.gz")))
    negatives = sorted({line.strip() for text in crawl for line in text.split("\n")
                        if 20 <= len(line.strip()) <= 200 and not line.strip().endswith((".", "!", "?"))})[::8]
    return positives, negatives


@pytest.fixture(scope="module")
def trained(examples, tmp_path_factory):
    positives, negatives = examples
    model = train_classifier([t for t in positives if not held_out(t)], [t for t in negatives if not held_out(t)], SMALL)
    path = tmp_path_factory.mktemp("model") / "quality.bin"
    train_quality.save_model(model, str(path))
    return model, path


def test_classifier_separates_held_out_examples(examples, trained):
    positives, negatives = examples
    model, _ = trained
    test_pos = [positive_probability(model, t) for t in positives if held_out(t)]
    test_neg = [positive_probability(model, t) for t in negatives if held_out(t)]
    assert len(test_pos) >= 30 and len(test_neg) >= 100
    correct = sum(s >= 0.5 for s in test_pos) + sum(s < 0.5 for s in test_neg)
    assert correct / (len(test_pos) + len(test_neg)) > 0.8
    # Area under the ROC curve: the chance that a good example outscores a bad one (0.5 is chance).
    auc = sum((p > n) + 0.5 * (p == n) for p in test_pos for n in test_neg) / (len(test_pos) * len(test_neg))
    assert auc > 0.85
    assert all(0.0 <= s <= 1.0 for s in test_pos + test_neg)


def test_training_is_reproducible(examples, tmp_path):
    positives, negatives = examples
    paths = []
    for name in ("a.bin", "b.bin"):
        train_quality.save_model(train_classifier(positives[:40], negatives[:40], SMALL), str(tmp_path / name))
        paths.append(tmp_path / name)
    assert paths[0].read_bytes() == paths[1].read_bytes()


def test_training_lines_are_labelled_one_line_each_and_shuffled_by_seed():
    lines = training_lines(["good\ntext", "", "more good"], ["bad  text"], seed=1)
    assert sorted(lines) == sorted([f"{POSITIVE} good text", f"{POSITIVE} more good", f"{NEGATIVE} bad text"])
    assert lines == training_lines(["good\ntext", "", "more good"], ["bad  text"], seed=1)


def test_training_needs_both_kinds():
    with pytest.raises(NoExamplesError, match="0 negative"):
        train_classifier(["good text"], ["", "  "], SMALL)


def test_quality_stage_drops_documents_the_model_scores_low(examples, trained):
    positives, negatives = examples
    _, path = trained
    rules_off = {name: {"enabled": False} for name in ("gopher_repetition", "gopher_quality", "c4", "fineweb")}
    config = config_io.from_dict(QualityConfig, {**rules_off, "model": {"model": str(path), "threshold": 0.5}})
    judge = QualityJudge(config)
    good = judge({"id": "g", "text": next(t for t in positives if held_out(t))})
    assert good.keep and good.signals["quality_model_score"] >= 0.5
    bad = judge({"id": "b", "text": next(t for t in negatives if held_out(t) and positive_probability(trained[0], t) < 0.5)})
    assert bad.reason == "quality_model_low_score" and bad.signals["quality_model_score"] < 0.5


def test_model_is_off_by_default():
    assert QualityModelConfig().model == ""
    assert "quality_model_score" not in judge_quality("text " * 100, "en", QualityConfig()).signals


def test_a_model_that_is_not_a_quality_classifier_is_rejected():
    with pytest.raises(ConfigError, match="not a quality classifier"):
        QualityJudge(QualityConfig(model=QualityModelConfig(model=str(BUNDLED_MODEL))))
    with pytest.raises(ConfigError, match="quality.model.threshold must be between 0 and 1"):
        QualityJudge(QualityConfig(model=QualityModelConfig(model=str(BUNDLED_MODEL), threshold=-1)))


def parse(argv):
    parser = OneLineParser(prog="train-quality")
    train_quality.add_arguments(parser)
    return parser.parse_args(argv)


def test_command_trains_from_jsonl_and_text_files(tmp_path, capsys):
    negatives = tmp_path / "negatives.txt"
    negatives.write_text("Home\nAbout us\nContact\nPrivacy Policy\nLog in | Sign up\n", encoding="utf-8")
    output = tmp_path / "out" / "model.bin"
    args = parse(["--positive", str(SAMPLE / "jsonl/dolma-cc_en_head-0091.jsonl.gz"), str(SAMPLE / "text/udhr/en.txt"),
                  "--negative", str(negatives), "--output", str(output), "--dim", "16", "--buckets", "10000"])
    assert train_quality.run(args) == 0
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary.startswith("trained quality classifier on 102 positive and 5 negative examples")
    model = load_fasttext_model(str(output))
    assert sorted(model.get_labels()) == [NEGATIVE, POSITIVE]


@pytest.mark.parametrize("content,name,message", [
    ('{"text": "ok"}\n{"body": "no text"}\n', "bad.jsonl", "bad.jsonl:2: not a JSON object with a 'text' field"),
    (b"\xff\xfe not utf-8\n", "latin.txt", "is not UTF-8 text"),
])
def test_command_errors_are_one_line(tmp_path, capsys, content, name, message):
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    elif content is not None:
        path.write_bytes(content)
    args = parse(["--positive", str(path), "--negative", str(SAMPLE / "text/udhr/en.txt"), "--output", str(tmp_path / "m.bin")])
    assert train_quality.run(args) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert message in err and err.startswith("pipeline train-quality: error:")
    assert not (tmp_path / "m.bin").exists()


def test_command_rejects_bad_options():
    with pytest.raises(SystemExit) as exit_info:
        parse(["--positive", "a", "--negative", "b", "--output", "m.bin", "--epochs", "0"])
    assert exit_info.value.code == 2


def write_part(directory: Path, records: list[dict]) -> None:
    directory.mkdir(parents=True)
    with gzip.open(directory / "part-00000-of-00001.jsonl.gz", "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(record) + "\n" for record in records)


def test_command_reads_the_cleaned_and_rejected_folders_of_a_clean_run(tmp_path, capsys):
    """rejected/ holds text for documents dropped after extraction and HTML for pages dropped at it;
    both become negatives. Rejections with neither (read errors) have nothing to learn from."""
    prose = texts_of(SAMPLE / "jsonl/dolma-cc_en_head-0091.jsonl.gz")[:20]
    write_part(tmp_path / "run/cleaned", [{"id": str(i), "text": text} for i, text in enumerate(prose)])
    write_part(tmp_path / "run/rejected", [
        {"id": "a", "stage": "quality", "reason": "gopher_min_words", "text": "Home | About | Contact"},
        {"id": "b", "stage": "extract", "reason": "extract_empty",
         "html": "<html><body><nav>Log in</nav><div>Cookie settings</div></body></html>"},
        {"id": "c", "stage": "extract", "reason": "html_too_large", "html": "<html><body><p>Buy now", "html_truncated": True},
        {"id": "d", "stage": "read", "reason": "read_error", "error": "truncated gzip"},
    ])
    (tmp_path / "run/cleaned/_SUCCESS").write_text("")  # the run finished; files that are not parts are not examples
    (tmp_path / "run/rejected/_SUCCESS").write_text("")
    args = parse(["--positive", str(tmp_path / "run/cleaned"), "--negative", str(tmp_path / "run/rejected"),
                  "--output", str(tmp_path / "m.bin"), "--dim", "16", "--buckets", "10000"])
    assert train_quality.run(args) == 0
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary.startswith(f"trained quality classifier on {len(prose)} positive and 3 negative examples")
    assert list(train_quality.read_examples(str(tmp_path / "run/rejected")))[1:] == ["Log in\nCookie settings", "Buy now"]


def test_a_folder_without_part_files_is_one_line_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    args = parse(["--positive", str(tmp_path / "empty"), "--negative", str(SAMPLE / "text/udhr/en.txt"),
                  "--output", str(tmp_path / "m.bin")])
    assert train_quality.run(args) == 1
    assert "holds no part-*.jsonl.gz files" in capsys.readouterr().err
