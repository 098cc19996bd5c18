"""Word splitting for the quality rules: spaced scripts by words, unspaced scripts by characters."""
from pathlib import Path

import pytest

from pipeline.text.words import split_words, tokens_per_word, writes_spaces

UDHR = Path(__file__).resolve().parents[1] / "data/sample/text/udhr"


def test_english_words_leave_out_punctuation_and_symbols_but_keep_inner_joiners():
    text = "Hello, world! Don't e-mail me -- at 3.5 p.m. | Menu · #tag … (ok)"
    assert split_words(text) == ["Hello", "world", "Don't", "e-mail", "me", "at", "3.5", "p.m", "Menu", "tag", "ok"]


def test_chinese_and_japanese_split_into_characters_inside_mixed_text():
    assert split_words("東京は日本の首都です。Tokyo 2020") == ["東", "京", "は", "日", "本", "の", "首", "都", "で", "す", "Tokyo", "2020"]


def test_thai_characters_keep_their_vowel_and_tone_marks():
    assert split_words("สวัสดี") == ["ส", "วั", "ส", "ดี"]


def test_scripts_with_combining_marks_stay_whole_words():
    # Devanagari vowel signs and viramas are combining marks, not separators.
    assert split_words("सभी मनुष्यों को गौरव") == ["सभी", "मनुष्यों", "को", "गौरव"]
    assert split_words("Привет, мир! العربية لغة") == ["Привет", "мир", "العربية", "لغة"]


@pytest.mark.parametrize("lang,low,high", [("en", 3.5, 7), ("de", 4, 8), ("ru", 4, 8), ("hi", 3, 6), ("zh", 1, 1.01), ("ja", 1, 1.01)])
def test_mean_word_length_of_real_udhr_text_is_plausible_per_language(lang, low, high):
    words = split_words((UDHR / f"{lang}.txt").read_text(encoding="utf-8"))
    assert len(words) > 1000
    assert low <= sum(map(len, words)) / len(words) <= high


def test_spacing_of_languages():
    assert writes_spaces("en") and writes_spaces("ar") and writes_spaces(None)
    assert not writes_spaces("zh") and not writes_spaces("ja") and not writes_spaces("th")
    assert tokens_per_word("de") == 1 and tokens_per_word("ja") == 2
