"""Placeholder: its owner replaces this module."""
from dataclasses import dataclass


@dataclass
class LangConfig:
    pass
