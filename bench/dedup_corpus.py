"""A labelled near-duplicate corpus built from real news text, for the dedup benchmarks.

Source: the 300 Lee background news articles (bench/data/dedup/lee_background.cor, one article
a line; see the README there). From a seeded RNG:

- near duplicates: copies of an article with the edits that separate copies of one page on the
  web: a boilerplate line (site banner, byline, copyright footer) added at the top or bottom, one
  content edit (a sentence inserted or deleted, or one to three words changed), and whitespace
  and punctuation noise;
- exact duplicates: byte-identical copies;
- hard negatives: the opening sentences of an article followed by those of another, under half
  of each: related to both, a duplicate of neither;
- every other article, once, untouched.

Near duplicates and hard negatives are made from articles of at least `min_words` words: on a
100-word news brief, one inserted sentence plus a banner line already changes a fifth of its
5-word shingles, which is a different document rather than a copy.

Each document carries `cluster`, the article it was made from (hard negatives get their own).

`scaling_corpus` serves the memory runs: its duplicate structure stays the same at every size
(pages mixed from the sentences of a real Common Crawl sample and the articles, a fixed share of
near and exact copies, clusters of at most three), so whatever grows with it is the stage's doing.
"""
from __future__ import annotations

import gzip
import json
import random
import re
from pathlib import Path

from pipeline.text.shingles import jaccard, shingle_hashes

SOURCE = Path(__file__).resolve().parent / "data" / "dedup" / "lee_background.cor"
CC_SAMPLE = (Path(__file__).resolve().parent.parent / "data" / "sample" / "jsonl"
             / "dolma-CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz")

BANNERS = [
    "Home | News | Sport | Business | Weather",
    "ABC Online - Australian news, updated daily",
    "Posted by the newsroom staff",
    "Share this article: email, print, comment",
    "Copyright 2001 Australian Broadcasting Corporation. All rights reserved.",
    "Click here to subscribe to our daily news alerts",
    "Related stories: more from this section",
]
WORD_EDITS = {"the": "a", "has": "had", "said": "says", "will": "would", "today": "yesterday",
              "New": "new", "people": "residents", "about": "around", "is": "was", "a": "one"}


def articles(max_overlap: float = 0.5) -> list[str]:
    """The articles, less those that already repeat an earlier one: the source holds a few
    identical and near-identical stories, which would otherwise be unlabelled duplicates."""
    kept, kept_shingles = [], []
    for line in SOURCE.read_text(encoding="utf-8").splitlines():
        shingles = shingle_hashes(line, 5, 5)
        if line.strip() and all(jaccard(shingles, other) <= max_overlap for other in kept_shingles):
            kept.append(line.strip())
            kept_shingles.append(shingles)
    return kept


def sentences(text: str) -> list[str]:
    return re.split(r"(?<=[.!?])\s+", text)


def edit_words(text: str, rng: random.Random, count: int) -> str:
    words = text.split(" ")
    positions = [i for i, word in enumerate(words) if word in WORD_EDITS]
    for i in rng.sample(positions, min(count, len(positions))):
        words[i] = WORD_EDITS[words[i]]
    return " ".join(words)


def add_noise(text: str, rng: random.Random) -> str:
    """Whitespace and punctuation differences that extraction from another template produces."""
    text = text.replace(". ", ".\n\n" if rng.random() < 0.5 else ".  ")
    text = text.replace(", ", " , " if rng.random() < 0.5 else ",")
    return text.replace('"', "'") if rng.random() < 0.5 else text


def near_duplicate(article: str, other: str, rng: random.Random) -> str:
    """`article` with one content edit, a boilerplate line, and formatting noise."""
    parts = sentences(article)
    edit = rng.choice(["insert", "delete", "words"])
    if edit == "insert":
        parts.insert(rng.randrange(len(parts) + 1), min(sentences(other), key=len))
    elif edit == "delete" and len(parts) > 4:
        parts.pop(min(range(len(parts)), key=lambda i: len(parts[i])))
    else:
        parts = sentences(edit_words(" ".join(parts), rng, rng.randint(1, 3)))
    banner = rng.choice(BANNERS)
    text = " ".join(parts)
    text = f"{banner}\n{text}" if rng.random() < 0.5 else f"{text}\n{banner}"
    return add_noise(text, rng)


def opening(text: str, share: float) -> list[str]:
    """The first sentences of `text`, at most `share` of its words (at least one sentence)."""
    parts, kept = sentences(text), []
    budget = share * len(text.split())
    for sentence in parts:
        if kept and sum(len(s.split()) for s in kept) + len(sentence.split()) > budget:
            break
        kept.append(sentence)
    return kept


def hard_negative(article: str, other: str, rng: random.Random) -> str:
    """The opening of `article`, then the opening of `other`: each under half of its source."""
    return " ".join(opening(article, rng.uniform(0.25, 0.45)) + opening(other, rng.uniform(0.25, 0.45)))


def labelled_corpus(seed: int = 0, min_words: int = 200, near_share: float = 0.8, negative_share: float = 0.3,
                    exact_share: float = 0.05) -> list[dict]:
    """Documents with `id`, `text` and `cluster` (true duplicate cluster), shuffled by `seed`."""
    rng = random.Random(seed)
    texts = articles()
    docs = []
    for index, article in enumerate(texts):
        cluster = f"lee-{index:03d}"
        docs.append({"id": f"{cluster}-orig", "text": article, "cluster": cluster})
        other = texts[(index + rng.randrange(1, len(texts))) % len(texts)]
        long_enough = len(article.split()) >= min_words
        if long_enough and rng.random() < near_share:
            for copy in range(rng.randint(1, 3)):
                docs.append({"id": f"{cluster}-near{copy}", "text": near_duplicate(article, other, rng), "cluster": cluster})
        if rng.random() < exact_share:
            docs.append({"id": f"{cluster}-exact", "text": article, "cluster": cluster})
        if long_enough and rng.random() < negative_share:
            docs.append({"id": f"{cluster}-negative", "text": hard_negative(article, other, rng),
                         "cluster": f"{cluster}-negative"})
    rng.shuffle(docs)
    return docs


def scaled_corpus(size: int, seed: int = 0) -> list[dict]:
    """`size` documents: the articles, then near-duplicate variants of them, round robin."""
    rng = random.Random(seed)
    texts = articles()
    docs = [{"id": f"lee-{i:03d}", "text": text} for i, text in enumerate(texts[:size])]
    while len(docs) < size:
        index = len(docs) % len(texts)
        other = texts[(index + 1) % len(texts)]
        docs.append({"id": f"lee-{index:03d}-v{len(docs):06d}", "text": near_duplicate(texts[index], other, rng)})
    return docs


def sentence_pool(min_words: int = 6) -> list[str]:
    """Distinct sentences of at least `min_words` words from the Common Crawl sample's pages and
    the articles, in the order first seen."""
    with gzip.open(CC_SAMPLE, "rt", encoding="utf-8") as lines:
        pages = [json.loads(line)["text"] for line in lines]
    found = dict.fromkeys(
        sentence for text in pages + articles() for line in text.splitlines()
        for sentence in sentences(line.strip()) if len(sentence.split()) >= min_words)
    return list(found)


def scaling_corpus(size: int, seed: int = 0, near_share: float = 0.2, exact_share: float = 0.03) -> list[dict]:
    """`size` documents: distinct pages of 10 to 20 sentences drawn from `sentence_pool`, and
    near (`near_share`) or exact (`exact_share`) copies of recent pages, each page copied at most
    twice. Two distinct pages share a sentence rarely (about 20,000 sentences in the pool)."""
    rng = random.Random(seed)
    pool = sentence_pool()
    docs: list[dict] = []
    copyable: list[dict] = []  # recent distinct pages with fewer than two copies
    while len(docs) < size:
        draw = rng.random()
        if copyable and draw < near_share + exact_share:
            page = rng.choice(copyable[-50:])
            page["copies"] += 1
            if page["copies"] == 2:
                copyable.remove(page)
            text = page["text"] if draw < exact_share else near_duplicate(page["text"], rng.choice(pool), rng)
            docs.append({"id": f"{page['id']}-copy{page['copies']}", "text": text})
        else:
            page = {"id": f"page-{len(docs):06d}", "text": " ".join(rng.sample(pool, rng.randint(10, 20))), "copies": 0}
            copyable.append(page)
            docs.append({"id": page["id"], "text": page["text"]})
    return docs
