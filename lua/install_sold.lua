--[[
install_sold: install (sold, sold_version) pairs learnt from PostgreSQL (a cancel, an
expiry, a late payment, the reconciler) by the version rule: only where the version is
newer than `<tier>:sold_v`. A tier missing from Redis is skipped: counters are never
created from nothing (the next load reads PostgreSQL anyway).

KEYS[1] inv   hash: event inventory

ARGV[3i-2] tier_id, ARGV[3i-1] sold, ARGV[3i] sold_version   (for i = 1..n)

Reply: JSON {r = "ok", installed (how many pairs were newer)}
]]

local inv = KEYS[1]
local installed = 0
for i = 1, #ARGV, 3 do
  local tier, sold, version = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  if redis.call('HEXISTS', inv, tier .. ':total') == 1 then
    local have = tonumber(redis.call('HGET', inv, tier .. ':sold_v') or '-1')
    if version > have then
      redis.call('HSET', inv, tier .. ':sold', sold, tier .. ':sold_v', version)
      installed = installed + 1
    end
  end
end
return cjson.encode({ r = 'ok', installed = installed })
