#!/usr/bin/env python3
"""CPU per event by pipeline stage, from a CPU profile of the scorer.

    scripts/profile-stages.py BINARY PROFILE EVENTS [PROFILE EVENTS ...]

PROFILE is a CPU profile that covers all the CPU the scorer spent on EVENTS
input events: `leadscorer-dev loadgen bench --profile-dir DIR` writes
DIR/scorer-cpu.pprof (score_memo off) and DIR/scorer-cpu-memo.pprof over the
saturation drain of its backlog (--events), which is that. Each sample is
given to the stage of the innermost frame on its stack that a rule below
names (so the allocation or copy inside a decoder counts as decoding, and
garbage collection as gc wherever it runs); the stage's samples over EVENTS
are its CPU per event. Several profiles print side by side.

It reads `go tool pprof -traces`, so it needs only Go and Python.
"""
import os
import re
import subprocess
import sys

# (stage, regular expression on a frame's function name), tried in order on
# each frame from the leaf up; the first frame any rule matches decides.
RULES = [
    ("gc", r"^runtime\.(gcBgMarkWorker|gcAssistAlloc|gcDrain|markroot|scanobject|bgsweep|bgscavenge|gcStart|gcMark|sweepone|greyobject|wbBuf)"),
    ("decode", r"^github\.com/leadscorer/leadscorer/(schemas\.\(\*CDCReader\)|schemas\.\(\*cdcDecoder\)|schemas\.\(\*scanner\)|schemas\.\(\*Codec\)\.Decode|schemas\.\(\*LeadChange\)|schemas\.checkLeadID|pipeline\.\(\*Pipeline\)\.decode)"),
    ("cdc apply", r"^github\.com/leadscorer/leadscorer/pipeline\.(\(\*Pipeline\)\.(apply|loadLeads|saveLeads|deriveOutcomes|outcome|refresh)|\(\*cdc\)|changed|olderOrSame|eventID|setPosition|present|crdOf)"),
    ("redis", r"^(github\.com/leadscorer/leadscorer/featurestore\.|github\.com/redis/go-redis/)"),
    ("features", r"^github\.com/leadscorer/leadscorer/(features\.|pipeline\.\(\*served\)\.add)"),
    ("factors and text", r"^github\.com/leadscorer/leadscorer/(scoring\.\(\*Version\)\.(TopContributions|TopFactors|Phrase|Percentile)|pipeline\.\(\*served\)\.(finish|phrase)|producer\.(AppendExplanation|Explanation)|pipeline\.hash)"),
    ("score and explain", r"^github\.com/leadscorer/leadscorer/(scoring\.|pipeline\.\(\*served\)\.(run|compute))"),
    ("encode", r"^github\.com/leadscorer/leadscorer/(schemas\.|producer\.|pipeline\.\(\*Pipeline\)\.(emit|quotaGuarded|deadLetter)|pipeline\.freshness)"),
    ("produce", r"^(github\.com/twmb/franz-go/pkg/kgo\.(\(\*Client\)\.(Produce|produce|TryProduce)|\(\*sink\)|\(\*recBuf\)|\(\*produceRequest\)|\(\*recBatch\)|\(\*seqRecBatch\)|\(\*stickyKeyTopicPartitioner\)|\(\*Record\)|\(\*producer\))|github\.com/klauspost/compress/s2\.(encode|Encode)|github\.com/klauspost/compress/.*[Ee]ncode|github\.com/pierrec/lz4)"),
    ("fetch", r"^(github\.com/twmb/franz-go/pkg/kgo\.(\(\*source\)|\(\*cursor\)|\(\*Client\)\.PollFetches|\(\*Client\)\.PollRecords|\(\*consumer\)|readRawRecords|processRecordBatch|ProcessFetchPartition|\(\*Fetches\)|recordToRecord|keepControlRecord)|github\.com/klauspost/compress/s2\.(s2Decode|Decode)|github\.com/klauspost/compress/.*[Dd]ecode)"),
    ("kafka transactions, I/O", r"^(github\.com/twmb/franz-go/|github\.com/leadscorer/leadscorer/consumer\.)"),
    ("metrics", r"^github\.com/prometheus/"),
    ("pipeline, other", r"^github\.com/leadscorer/leadscorer/"),
]
ORDER = [r[0] for r in RULES] + ["runtime, other"]
COMPILED = [(name, re.compile(rx)) for name, rx in RULES]

UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "hrs": 3600.0}


def seconds(value):
    m = re.fullmatch(r"([0-9.]+)(ns|us|µs|ms|s|min|hrs)", value)
    if not m:
        raise ValueError("not a duration: " + value)
    return float(m.group(1)) * UNITS[m.group(2)]


def classify(stack):
    for frame in stack:
        for name, rx in COMPILED:
            if rx.search(frame):
                return name
    return "runtime, other"


def stages(binary, profile):
    out = subprocess.run(["go", "tool", "pprof", "-traces", binary, profile],
                         check=True, capture_output=True, text=True).stdout
    total, by = 0.0, {}
    for block in out.split("-----------+-------------------------------------------------------")[1:]:
        lines = [l for l in block.split("\n") if l.strip()]
        if not lines:
            continue
        first = lines[0].split()
        if len(first) < 2:
            continue
        try:
            value = seconds(first[0])
        except ValueError:
            continue
        stack = [first[1]] + [l.split()[0] for l in lines[1:] if not l.strip().startswith(("bytes:", "label"))]
        st = classify(stack)
        by[st] = by.get(st, 0.0) + value
        total += value
    return total, by


def main(argv):
    if len(argv) < 4 or len(argv) % 2 != 0:
        sys.exit(__doc__)
    binary, pairs = argv[1], [(argv[i], int(argv[i + 1])) for i in range(2, len(argv), 2)]
    cols = []
    for prof, events in pairs:
        total, by = stages(binary, prof)
        cols.append((prof, events, total, by))
    print("| stage | " + " | ".join("%s (us/event)" % os.path.basename(p) for p, _, _, _ in cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for st in ORDER:
        if all(by.get(st, 0) == 0 for _, _, _, by in cols):
            continue
        cells = ["%.2f (%.0f%%)" % (1e6 * by.get(st, 0) / ev, 100 * by.get(st, 0) / tot) for _, ev, tot, by in cols]
        print("| %s | %s |" % (st, " | ".join(cells)))
    print("| **total** | " + " | ".join("**%.2f** (%d events, %.2f s of samples)" % (1e6 * tot / ev, ev, tot) for _, ev, tot, _ in cols) + " |")


if __name__ == "__main__":
    main(sys.argv)
