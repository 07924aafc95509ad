"""The arbitrary-box workload of T2a: boxes a user might drag on a map over the generated
trips, seeded, one JSON line per box: {"name": "b000", "bbox": "min_lon,min_lat,max_lon,max_lat"}.

Each side is drawn independently, log-uniform from 100 m to 30 km, and converted to degrees
at the box's latitude. Centres: 70 % near a hot spot (within a few km), 30 % anywhere around
a city (the disc holding its spots, and a margin of sparse land beyond).

The cities are parsed from `CITIES` in crates/trips/src/generate.rs, so the workload follows
the generator. The hot spots themselves are not constants there: the generator draws them
from its seeded ChaCha8 stream, which Python cannot replay without reimplementing `rand`.
They are found instead where the trips are: a trip end of `sluice generate trips --seed 42`
lies within its spot's spread (0.2-1.5 km), so picking a random end of a sample of generated
trips picks a spot in proportion to its traffic, as a user looks where the trips are.

usage: boxes.py [--n 240] [--seed 42] [--sluice PATH] > boxes.jsonl
"""
import argparse, json, math, os, random, re, subprocess

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ap = argparse.ArgumentParser()
ap.add_argument("--n", type=int, default=240)
ap.add_argument("--seed", type=int, default=42)
ap.add_argument("--sluice", default=os.path.join(root, "target", "release", "sluice"))
args = ap.parse_args()

src = open(os.path.join(root, "crates", "trips", "src", "generate.rs")).read()
block = re.search(r"const CITIES: \[[^\]]*\] = \[(.*?)\];", src, re.S)
cities = [(n, float(lon), float(lat), int(w)) for n, lon, lat, w in
          re.findall(r'\("(\w+)",\s*(-?[\d.]+),\s*(-?[\d.]+),\s*(\d+)\)', block.group(1))]
assert cities, "no CITIES in generate.rs"
# generate.rs puts spots up to 0.12 deg (lat) from the centre, 1.4x wider in longitude.
SPOT_RADIUS = 0.12
LON_STRETCH = 1.4

# 20 000 trips give 40 000 ends: every spot of every city is among them many times.
sample = subprocess.run([args.sluice, "generate", "trips", "--rows", "20000", "--seed", "42"],
                        check=True, capture_output=True, text=True).stdout.splitlines()[1:]
point = re.compile(r"POINT \((-?[\d.e-]+) (-?[\d.e-]+)\)")
ends = [(float(x), float(y)) for line in sample for x, y in point.findall(line)]

rng = random.Random(args.seed)
M_PER_DEG = 111_320.0


def side_m():
    return math.exp(rng.uniform(math.log(100.0), math.log(30_000.0)))


weights = [c[3] for c in cities]
for i in range(args.n):
    if rng.random() < 0.7:
        x, y = rng.choice(ends)
        # a few km around the spot, the box not necessarily centred on its peak
        r, a = abs(rng.gauss(0, 1_500.0)), rng.uniform(0, math.tau)
        cy = y + r * math.sin(a) / M_PER_DEG
        cx = x + r * math.cos(a) / (M_PER_DEG * math.cos(math.radians(cy)))
    else:
        _, lon, lat, _ = rng.choices(cities, weights)[0]
        # uniform over a disc 1.5x the spots' one: dense parts, their edges and sparse land
        r, a = 1.5 * SPOT_RADIUS * math.sqrt(rng.random()), rng.uniform(0, math.tau)
        cx, cy = lon + LON_STRETCH * r * math.cos(a), lat + r * math.sin(a)
    w, h = side_m(), side_m()
    dlon = w / (M_PER_DEG * math.cos(math.radians(cy)))
    dlat = h / M_PER_DEG
    bbox = [cx - dlon / 2, cy - dlat / 2, cx + dlon / 2, cy + dlat / 2]
    print(json.dumps({"name": f"b{i:03d}", "bbox": ",".join(f"{v:.6f}" for v in bbox)}))
