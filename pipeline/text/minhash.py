"""Placeholder: its owner replaces this module."""
from dataclasses import dataclass


@dataclass
class DedupConfig:
    pass
