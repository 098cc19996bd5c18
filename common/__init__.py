"""What the pipeline, the tokenizer, the model and the trainer share, and nothing of theirs.

`cli` (command-line plumbing), `config_io` (typed TOML configs), `fileio` (atomic output through Beam
FileSystems, the JSONL shard names), `hashing` (stable hashes) and `shard_format` (the token shards).
The arrows run one way: every other package may import `common`; `common` imports none of them.
This file imports nothing, so that the trainer, which never imports Beam, can use the Beam-free modules.
"""
