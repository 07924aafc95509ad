-- wrk request script for A1, trips part (bench/trips/http.sh): every request a weekly average
-- over a box of the T2a workload (env BOXES: the JSON lines of bench/trips/boxes.py), in a
-- random match mode and weeks mode. Each of the four coordinates gets three random digits
-- past the file's six decimals (under 0.1 m), so no two requests are the same URL and no
-- response cache can answer one, while the work stays that of the workload's boxes.
--
-- Seeding, error accounting and the summary line: bench/lib/a1.lua.

dofile(os.getenv("A1_LUA"))

local boxes_file = os.getenv("BOXES")
local MATCHES = { "origin", "destination", "both", "either" }

function prepare()
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
