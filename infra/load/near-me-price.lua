-- wrk script: POST the near-me GraphQL query, sorted by PRICE, around random European positions.
math.randomseed(42)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local query = "query($lat: Float!, $lon: Float!) { chargers(near: {latitude: $lat, longitude: $lon}, radiusMeters: 10000, filter: {powerType: DC, minAvailable: 1}, sort: PRICE, priceBasis: {energyKwh: 20}, first: 20) { totalCount edges { node { id name distanceMeters maxPowerKw estimatedPrice { amount currency } availability { available total } } } } }"
request = function()
  local lat = 43 + math.random() * 12
  local lon = -3 + math.random() * 20
  local body = string.format('{"query":"%s","variables":{"lat":%f,"lon":%f}}', query, lat, lon)
  return wrk.format(nil, nil, nil, body)
end
