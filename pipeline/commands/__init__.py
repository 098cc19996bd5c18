"""Sub-commands of `python -m pipeline`: each module has `add_arguments(parser)` and `run(args) -> int`."""
