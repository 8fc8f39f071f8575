--[[
inventory: read the counters of some tiers of one event. Read-only.

KEYS[1] inv   hash: event inventory

ARGV[i] tier_id  (one or more)

Reply: JSON {r = "ok", tiers = {[tier_id] = {total, sold, held, active, start, end}}};
a tier missing from Redis is absent from `tiers` (load it and ask again).
]]

local inv = KEYS[1]
local tiers = {}
local found = false
for _, tier in ipairs(ARGV) do
  local f = redis.call('HMGET', inv, tier .. ':total', tier .. ':sold', tier .. ':held',
    tier .. ':active', tier .. ':start', tier .. ':end')
  if f[1] then
    tiers[tier] = { total = tonumber(f[1]), sold = tonumber(f[2]), held = tonumber(f[3]),
      active = f[4] == '1', start = tonumber(f[5]), ['end'] = tonumber(f[6]) }
    found = true
  end
end
if not found then
  return '{"r":"ok","tiers":{}}'
end
return cjson.encode({ r = 'ok', tiers = tiers })
