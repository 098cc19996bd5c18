"""Language-ID accuracy of the `lang` stage's model on real multilingual text.

    python bench/lang_accuracy.py [--fortunes DIR]

Sets, each with its true language taken from the file name:
- udhr-docs:   each UDHR translation in data/sample/text/udhr as one document
- udhr-lines:  each line of those files with at least 20 characters (short text is the hard case)
- html-pages:  each page in data/sample/html (or --html DIR) (`<lang>--name.html`), text extracted with resiliparse
- fortunes:    each "%"-separated fortune of DIR/<lang>.txt (e.g. the shared data's text/fortunes)
Prints one line per set with accuracy, and the confusions.
"""
from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.encoding import bytes_to_str, detect_encoding

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.text.fasttext_model import load_fasttext_model  # noqa: E402
from pipeline.text.lang import BUNDLED_MODEL, identify  # noqa: E402

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"


def udhr_docs():
    for path in sorted((SAMPLE / "text" / "udhr").glob("*.txt")):
        yield path.stem, path.read_text(encoding="utf-8")


def udhr_lines():
    for lang, text in udhr_docs():
        for line in text.splitlines():
            if len(line.strip()) >= 20:
                yield lang, line


def html_pages(directory: Path):
    for path in sorted(directory.glob("*.html")):
        raw = path.read_bytes()
        yield path.name.split("--")[0], extract_plain_text(bytes_to_str(raw, detect_encoding(raw)), main_content=True)


def fortunes(directory: Path):
    for path in sorted(directory.glob("*.txt")):
        for fortune in path.read_text(encoding="utf-8").split("\n%\n"):
            if fortune.strip():
                yield path.stem, fortune


def evaluate(model, examples) -> tuple[int, int, collections.Counter]:
    correct = total = 0
    confusions: collections.Counter = collections.Counter()
    for truth, text in examples:
        predicted, _ = identify(model, text)
        total += 1
        if predicted == truth:
            correct += 1
        else:
            confusions[(truth, predicted)] += 1
    return correct, total, confusions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--html", type=Path, default=SAMPLE / "html", help="a directory of <lang>--name.html pages")
    parser.add_argument("--fortunes", type=Path, help="a directory of <lang>.txt fortune files")
    args = parser.parse_args()
    model = load_fasttext_model(str(BUNDLED_MODEL))
    sets = {"udhr-docs": udhr_docs(), "udhr-lines": udhr_lines(), "html-pages": html_pages(args.html)}
    if args.fortunes:
        sets["fortunes"] = fortunes(args.fortunes)
    for name, examples in sets.items():
        correct, total, confusions = evaluate(model, examples)
        worst = ", ".join(f"{truth}->{predicted} x{count}" for (truth, predicted), count in confusions.most_common(5))
        print(f"{name:11s} accuracy {correct / total:7.2%} ({correct}/{total})" + (f"  confusions: {worst}" if worst else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
