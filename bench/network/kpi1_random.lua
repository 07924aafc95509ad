-- wrk request script for A1 (bench/network/http.sh): every request is a different
-- `/kpi1` query, so the server's response cache cannot answer it. Each request picks a
-- window of the generated day (2017-03-01, read in the server's compat zone, UTC by default)
-- that starts at a random second and lasts 5 minutes to 2 hours, also to the second, and
-- one of the two intervals (5-minute, 1-hour). With ~86 400 x 6 900 x 2 possible
-- queries, repeats are negligible.
--
-- Seeding, error accounting and the summary line: bench/lib/a1.lua.

dofile(os.getenv("A1_LUA"))

local DAY = 86400
-- env FIXED: one path to ask every time instead (http.sh measures the cached case with it,
-- under the same error accounting).
local FIXED = os.getenv("FIXED")
if FIXED == "" then
  FIXED = nil
end

-- Seconds since 2017-03-01 00:00 as the Flask routes' `YYYY-MM-DD_HH:MM:SS` (a window may
-- end on the next day).
local function stamp(s)
  local day = math.floor(s / DAY)
  s = s - day * DAY
  return string.format("2017-03-%02d_%02d:%02d:%02d", 1 + day, math.floor(s / 3600),
    math.floor(s / 60) % 60, s % 60)
end

function request()
  if FIXED then
    return wrk.format("GET", FIXED)
  end
  local from = math.random(0, DAY - 1)
  local to = from + math.random(300, 7200)
  local interval = math.random(2) == 1 and "5-minute" or "1-hour"
  return wrk.format("GET", "/kpi1?from=" .. stamp(from) .. "&to=" .. stamp(to) .. "&interval=" .. interval)
end
