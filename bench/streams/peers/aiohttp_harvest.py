#!/usr/bin/env python3
"""Bench S1 peer: the three event streams harvested with aiohttp, as a competent Python user
would write it: one task per stream, chunked reads split into SSE messages, json.loads, the
same columns as sluice (event time converted from the user's zone), malformed messages kept
apart, batched executemany into SQLite (WAL) in one transaction per batch.

Prints one JSON line: events, malformed, received, lost, total_ms, events_per_s."""
import argparse
import asyncio
import json
import sqlite3
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import aiohttp

STREAMS = ["sytflix", "sytazon", "sysney"]
ZONES = {c: ZoneInfo(z) for c, z in {
    "PT": "UTC", "CA": "America/Toronto", "US": "America/Los_Angeles", "RU": "Europe/Moscow",
    "ID": "Asia/Jakarta", "CN": "Asia/Shanghai"}.items()}
DEFAULT_ZONE = ZoneInfo("Europe/Amsterdam")
KINDS = {"stream-started", "stream-finished", "stream-ended", "show-liked", "stream-interrupted"}
BATCH = 5000


class Harvest:
    def __init__(self, db):
        self.db = sqlite3.connect(db)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("""CREATE TABLE IF NOT EXISTS events (seq INTEGER, stream TEXT,
            event_id TEXT, event_type TEXT, event_date TEXT, at_ms INTEGER, user_id INTEGER,
            first_name TEXT, last_name TEXT, date_of_birth TEXT, country TEXT, show_id TEXT,
            platform TEXT, title TEXT, first_actor TEXT, release_year INTEGER, raw TEXT)""")
        self.db.execute("CREATE UNIQUE INDEX IF NOT EXISTS events_seq ON events (seq)")
        self.db.execute("CREATE TABLE IF NOT EXISTS malformed (seq INTEGER, stream TEXT, reason TEXT, raw TEXT)")
        self.rows, self.bad = [], []
        self.seq = 0
        self.events = self.malformed = 0

    def message(self, stream, block):
        fields = {}
        for line in block.split("\n"):
            if not line or line[0] == ":":
                continue
            name, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if name == "data" and "data" in fields:
                fields["data"] += "\n" + value
            else:
                fields[name] = value
        seq = self.seq
        self.seq += 1
        try:
            kind = fields["event"]
            if kind not in KINDS:
                raise ValueError("unknown event type")
            d = json.loads(fields["data"])
            show, user = d["show"], d["user"]
            zone = ZONES.get(user.get("country"), DEFAULT_ZONE)
            at = datetime.strptime(d["event_date"], "%d-%m-%Y %H:%M:%S.%f").replace(tzinfo=zone)
            cast = show.get("cast")
            first = cast.split(",")[0].strip() if cast else None
            dob = user.get("date_of_birth")
            if dob:
                dob = datetime.strptime(dob, "%d/%m/%Y").date().isoformat()
            self.rows.append((seq, stream, fields.get("id"),
                              "stream-finished" if kind == "stream-ended" else kind,
                              d["event_date"], int(at.timestamp() * 1000), int(user["id"]),
                              user.get("first_name"), user.get("last_name"), dob, user.get("country"),
                              show["show_id"], show["platform"], show.get("title"), first or None,
                              show.get("release_year"), fields["data"]))
            self.events += 1
        except (KeyError, ValueError, TypeError, AttributeError) as e:
            self.bad.append((seq, stream, repr(e), block))
            self.malformed += 1
        if len(self.rows) + len(self.bad) >= BATCH:
            self.flush()

    def flush(self):
        with self.db:
            self.db.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", self.rows)
            self.db.executemany("INSERT INTO malformed VALUES (?,?,?,?)", self.bad)
        self.rows, self.bad = [], []


async def consume(session, url, auth, stream, h):
    async with session.get(f"{url}/{stream}", auth=auth,
                           headers={"Accept": "text/event-stream"}) as resp:
        resp.raise_for_status()
        buf = ""
        decoder = __import__("codecs").getincrementaldecoder("utf-8")("replace")
        async for chunk in resp.content.iter_any():
            buf += decoder.decode(chunk).replace("\r\n", "\n")
            *blocks, buf = buf.split("\n\n")
            for block in blocks:
                h.message(stream, block)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", required=True)
    ap.add_argument("--user", default="sytac")
    ap.add_argument("--password", default="4p9g-Dv7T-u8fe-iz6y-SRW2")
    ap.add_argument("--duration", type=float, default=20)
    ap.add_argument("--db", required=True)
    a = ap.parse_args()
    h = Harvest(a.db)
    auth = aiohttp.BasicAuth(a.user, a.password)
    start = time.monotonic()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as session:
        tasks = [asyncio.create_task(consume(session, a.source, auth, s, h)) for s in STREAMS]
        done, pending = await asyncio.wait(tasks, timeout=a.duration)
        for t in pending:
            t.cancel()
        for t in done:
            t.result()
    h.flush()
    total_ms = int((time.monotonic() - start) * 1000)
    received = h.seq
    print(json.dumps({"events": h.events, "malformed": h.malformed, "received": received,
                      "lost": received - h.events - h.malformed, "total_ms": total_ms,
                      "events_per_s": (h.events + h.malformed) * 1000 / total_ms}))


if __name__ == "__main__":
    asyncio.run(main())
