"""Comparing the outputs of two `clean` runs: everything must be byte-identical except the run's timing."""
import json
import re

_TIMING_SECTION = re.compile(rb"<section id='timing'>.*?</section>", re.S)


def without_timing(name: str, data: bytes) -> bytes:
    """`data` of the output file `name` less what differs from run to run: how long it took."""
    if name.endswith("stats.json"):
        stats = json.loads(data)
        assert stats.pop("timing")["wall_seconds"] > 0
        return json.dumps(stats, indent=2, sort_keys=True).encode()
    if name.endswith("report.html"):
        assert _TIMING_SECTION.search(data)
        return _TIMING_SECTION.sub(b"", data)
    return data
