-- wrk script: OCPI real-time authorization (POST /ocpi/2.2.1/tokens/{uid}/authorize) against
-- `emsp bench authorize --serve`, random tokens of the seeded range with a LocationReferences body.
--   wrk -t2 -c32 -d20s --latency -s infra/load/authorize.lua http://127.0.0.1:18182 -- "Token ..." 100000
local authorization, tokens
function init(args)
  authorization = args[1] or error("pass the Authorization header value after --")
  tokens = tonumber(args[2] or "100000")
  math.randomseed(os.time() + (id or 0))
end
function setup(thread)
  thread:set("id", math.random(1, 1000000))
end
request = function()
  local n = math.random(0, tokens - 1)
  local path = string.format("/ocpi/2.2.1/tokens/04%010X/authorize?type=RFID", n)
  local body = string.format('{"location_id":"LOC-%d","evse_uids":["E1"]}', math.random(0, 999))
  return wrk.format("POST", path, { ["Content-Type"] = "application/json", ["Authorization"] = authorization }, body)
end
