-- wrk request script for A1, trips part (bench/trips/http.sh): every request a weekly average
-- over a box of the T2a workload (env BOXES: the JSON lines of bench/trips/boxes.py), in a
-- random match mode and weeks mode. Each of the four coordinates gets three random digits
-- past the file's six decimals (under 0.1 m), so no two requests are the same URL and no
-- response cache can answer one, while the work stays that of the workload's boxes.
--
-- Seeded: thread i draws from its own generator seeded with SEED + i (env SEED, default 1).
-- Every response that is not 2xx counts as an error; `done` prints one summary line that
-- http.sh parses, with wrk's own error counts (connect, read, write, timeout).

local seed = tonumber(os.getenv("SEED") or "1")
local boxes_file = os.getenv("BOXES")
local threads = {}
local counter = 0
local MATCHES = { "origin", "destination", "both", "either" }

function setup(thread)
  thread:set("thread_seed", seed + counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(thread_seed)
  bad = 0
  boxes = {}
  for line in io.lines(boxes_file) do
    local a, b, c, d = line:match('"bbox": "([^,]+),([^,]+),([^,]+),([^"]+)"')
    if a then
      table.insert(boxes, { a, b, c, d })
    end
  end
  assert(#boxes > 0, "no boxes in " .. tostring(boxes_file))
end

function request()
  local b = boxes[math.random(#boxes)]
  local q = {}
  for i = 1, 4 do
    q[i] = b[i] .. string.format("%03d", math.random(0, 999))
  end
  local path = "/api/v1/trips/weekly-average?bbox=" .. table.concat(q, ",") .. "&match="
    .. MATCHES[math.random(4)]
  if math.random(2) == 1 then
    path = path .. "&weeks=span"
  end
  return wrk.format("GET", path)
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
