"""Lets Dataflow workers install this project with `--setup_file=./setup.py`; metadata is in pyproject.toml."""
from setuptools import setup

setup()
