"""Corpus cleaning pipeline: raw web text in, deduplicated documents and token shards out.

Importing this package pulls in nothing heavy and changes nothing (no logging set-up): Beam is imported
only by the modules that build pipelines (`pipeline.stages`, `pipeline.graph`, `pipeline.commands`).
What the trainer shares with the pipeline (`common.shard_format`, `common.config_io`) lives in `common`.
"""
