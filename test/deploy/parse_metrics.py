"""Parse a Prometheus text exposition with the reference parser, prometheus_client's
(Debian: python3-prometheus-client), and check what a scraper relies on beyond the syntax.

    parse_metrics.py < metrics.txt     prints one "name{label=value,...} value" line per
                                       sample (labels sorted), for the test to grep

Exit status 1, with the reason, when the parser rejects the text or a check fails:
every family has HELP and TYPE, a family appears once, counters end in _total and are
never negative, label names are unique within a sample, a histogram's buckets are
cumulative and end with +Inf, which equals its _count.
"""
import re
import sys

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    sys.exit("parse_metrics: python3-prometheus-client is not installed (scripts/install-deps)")


def fail(why):
    sys.exit("parse_metrics: " + why)


text = sys.stdin.read()
if not text.endswith("\n"):
    fail("the exposition does not end with a line feed")

# What the parser does not insist on, read from the text itself.
helps, types = {}, {}
for line in text.splitlines():
    m = re.match(r"# (HELP|TYPE) (\S+) ?(.*)$", line)
    if m:
        table = helps if m.group(1) == "HELP" else types
        if m.group(2) in table:
            fail("%s given twice for %s" % (m.group(1), m.group(2)))
        table[m.group(2)] = m.group(3)

try:
    families = list(text_string_to_metric_families(text))
except Exception as e:  # the parser raises ValueError (and others) on malformed input
    fail("the reference parser rejected the exposition: %r" % (e,))

seen = set()
for f in families:
    if f.name in seen:
        fail("family %s appears twice" % f.name)
    seen.add(f.name)
    declared = f.name + "_total" if f.type == "counter" else f.name
    if declared not in types or declared not in helps:
        fail("family %s has no HELP or TYPE line" % declared)
    if f.type not in ("counter", "gauge", "histogram"):
        fail("family %s has type %s" % (declared, f.type))
    if f.type == "histogram":
        buckets = [s for s in f.samples if s.name == f.name + "_bucket"]
        counts = [s.value for s in f.samples if s.name == f.name + "_count"]
        if not buckets or buckets[-1].labels.get("le") != "+Inf":
            fail("histogram %s does not end with an le=+Inf bucket" % f.name)
        if any(a.value > b.value for a, b in zip(buckets, buckets[1:])):
            fail("histogram %s has buckets that are not cumulative" % f.name)
        if counts != [buckets[-1].value]:
            fail("histogram %s: _count is not the +Inf bucket" % f.name)
    if not f.samples:
        fail("family %s has no sample" % declared)
    for s in f.samples:
        if f.type == "counter" and (not s.name.endswith("_total") or s.value < 0):
            fail("counter sample %s %s" % (s.name, s.value))
        labels = ",".join("%s=%s" % kv for kv in sorted(s.labels.items()))
        value = int(s.value) if float(s.value).is_integer() else s.value
        print("%s{%s} %s" % (s.name, labels, value))
