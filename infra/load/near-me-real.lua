-- wrk script: the near-me query around real charger positions (backend/bench/data/seed-points.csv,
-- jittered by up to ~5 km), the positions the generated dataset clusters around: every request
-- finds chargers, unlike near-me.lua's uniform positions, many of which fall where there are none.
math.randomseed(42)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local query = "query($lat: Float!, $lon: Float!) { chargers(near: {latitude: $lat, longitude: $lon}, radiusMeters: 10000, filter: {powerType: DC, minAvailable: 1}, first: 20) { totalCount edges { node { id name distanceMeters maxPowerKw availability { available total } } } } }"
local points = {}
local file = io.open("backend/bench/data/seed-points.csv", "r")
if file then
  file:read("*l") -- header
  for line in file:lines() do
    local lat, lon = line:match("^([%-%d%.]+),([%-%d%.]+),")
    if lat then points[#points + 1] = { tonumber(lat), tonumber(lon) } end
  end
  file:close()
end
if #points == 0 then error("run from the repository root: backend/bench/data/seed-points.csv not found") end
request = function()
  local p = points[math.random(#points)]
  local lat = p[1] + (math.random() - 0.5) * 0.1
  local lon = p[2] + (math.random() - 0.5) * 0.1
  local body = string.format('{"query":"%s","variables":{"lat":%f,"lon":%f}}', query, lat, lon)
  return wrk.format(nil, nil, nil, body)
end
