"""Cross-check of two uptime reports: same stores, every figure within 0.01 (two programs
may round a value that lies on a half-hundredth differently). Exit 1 on disagreement."""
import csv
import sys


def load(path):
    with open(path, newline="") as f:
        r = csv.reader(f)
        header = next(r)
        return header, {row[0]: [float(x) for x in row[1:]] for row in r}


(ha, a), (hb, b) = load(sys.argv[1]), load(sys.argv[2])
bad = []
if ha != hb:
    bad.append(f"headers differ: {ha} vs {hb}")
if a.keys() != b.keys():
    bad.append(f"stores differ: {len(a.keys() - b.keys())} only in {sys.argv[1]}, {len(b.keys() - a.keys())} only in {sys.argv[2]}")
worst = 0.0
for s in a.keys() & b.keys():
    diff = max(abs(x - y) for x, y in zip(a[s], b[s]))
    worst = max(worst, diff)
    if diff > 0.0101 and len(bad) < 10:
        bad.append(f"{s}: {a[s]} vs {b[s]}")
print(f"{len(a)} stores, largest difference {worst:.4f}" + ("" if not bad else " DISAGREE:\n  " + "\n  ".join(bad)))
sys.exit(1 if bad else 0)
