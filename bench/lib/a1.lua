-- Shared by the A1 wrk request scripts (bench/network/kpi1_random.lua,
-- bench/trips/boxes.lua), which load it with `dofile(os.getenv("A1_LUA"))` and define
-- `request` (and, if they need one, `prepare`, run once per thread after seeding).
--
-- Seeded: thread i draws from its own generator seeded with SEED + i (env SEED, default 1),
-- so a run sends the same sequence of requests every time (how far along it gets depends on
-- the speed). Every response that is not 2xx counts as an error; `done` prints one summary
-- line that bench/lib/a1.sh parses, with wrk's own error counts (connect, read, write,
-- timeout).

local seed = tonumber(os.getenv("SEED") or "1")
local threads = {}
local counter = 0

function setup(thread)
  thread:set("thread_seed", seed + counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(thread_seed)
  bad = 0
  if prepare then
    prepare()
  end
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local non2xx = 0
  for _, t in ipairs(threads) do
    non2xx = non2xx + t:get("bad")
  end
  local e = summary.errors
  io.write(string.format(
    "A1SUMMARY requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    non2xx, e.connect, e.read, e.write, e.timeout))
end
