"""GPT training on memory-mapped token shards: `python -m train` (see train/__main__.py).

Nothing here imports Apache Beam: the trainer reads shards through `common.shard_format` only.
"""
