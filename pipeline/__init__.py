"""Corpus cleaning pipeline: raw web text in, deduplicated documents and token shards out.

Importing this package pulls in nothing heavy: Beam is imported only by the modules that build
pipelines (`pipeline.stages`, `pipeline.graph`, `pipeline.commands`), so the trainer can import
`pipeline.shard_format` and `pipeline.config_io` without Beam installed.
"""
import logging


class _DropBenignBeamImportWarning(logging.Filter):
    # Beam logs "apitools not found ..." on the root logger whenever its GCP extra is absent, which
    # is the normal local set-up; it would otherwise precede every one-line error our commands print.
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("apitools not found")


logging.getLogger().addFilter(_DropBenignBeamImportWarning())
