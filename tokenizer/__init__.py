"""SentencePiece tokenizer for the corpus: `python -m tokenizer train`, and `Tokenizer` for everyone else.

    from tokenizer import Tokenizer
    tok = Tokenizer.load("TOK")
    ids = tok.encode("text")          # decode(ids) gives the text back exactly
    tok.eot_id, tok.vocab_size, tok.model_sha256
"""
from tokenizer.model import EOT_TOKEN, META_FILE, MODEL_FILE, Tokenizer, TokenizerError

__all__ = ["EOT_TOKEN", "META_FILE", "MODEL_FILE", "Tokenizer", "TokenizerError"]
