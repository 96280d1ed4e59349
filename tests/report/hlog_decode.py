"""Decodes each `Tag=CALL,start,length,max,PAYLOAD` line of an interval log
read from stdin with PyPI's hdrhistogram (`hdrh`), whose own log reader does
not accept tags, and prints `CALL total_count p99_value max_value` per line."""
import sys

from hdrh.histogram import HdrHistogram

for line in sys.stdin:
    if not line.startswith("Tag="):
        continue
    tag, _start, _length, _max, payload = line.strip().split(",")
    histogram = HdrHistogram.decode(payload)
    print(
        tag[len("Tag="):],
        histogram.get_total_count(),
        histogram.get_value_at_percentile(99),
        histogram.get_max_value(),
    )
