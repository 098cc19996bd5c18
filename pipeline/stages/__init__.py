"""One composite PTransform per pipeline stage; each only wires pure functions from `pipeline.text`."""
