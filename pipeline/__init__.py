"""Corpus cleaning pipeline: raw web text in, deduplicated documents and token shards out.

Importing this package pulls in nothing heavy: Beam is imported only by the modules that build
pipelines (`pipeline.stages`, `pipeline.graph`, `pipeline.commands`), so the trainer can import
`pipeline.shard_format` and `pipeline.config_io` without Beam installed.
"""
