"""Gather 64-bit numbers from every element of a PCollection into one array, compactly."""
from __future__ import annotations

import array
from typing import Any, Callable, Iterable

import apache_beam as beam
import numpy as np


class NumberArray(beam.CombineFn):
    """Elements → `finish(numbers)`, where `numbers` holds, as one uint64 array, what `numbers_of`
    gives for each element: 8 bytes a number, where a shuffle of the elements would hold each one
    decoded. `numbers_of` and `finish` are module-level functions (they travel to the workers)."""

    def __init__(self, numbers_of: Callable[[Any], Iterable[int]], finish: Callable[[np.ndarray], Any]):
        self._numbers_of = numbers_of
        self._finish = finish

    def create_accumulator(self):
        return array.array("Q")

    def add_input(self, numbers, element):
        numbers.extend(self._numbers_of(element))
        return numbers

    def merge_accumulators(self, accumulators):
        merged = array.array("Q")
        for numbers in accumulators:
            merged.extend(numbers)
        return merged

    def extract_output(self, numbers):
        return self._finish(np.frombuffer(numbers, dtype=np.uint64))
