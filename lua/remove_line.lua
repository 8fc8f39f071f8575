--[[
remove_line: remove one tier's line from a cart's part, giving its seats back. Removing
a line that is not there is not an error (the call is idempotent). Other lines keep their
expiry: removing is not activity that extends a hold.

KEYS[1] inv    hash: event inventory
KEYS[2] carts  hash: cart id -> part (JSON)
KEYS[3] exp    sorted set: cart id -> expiry (ms)

ARGV[1] cart_id
ARGV[2] tier_id
ARGV[3] now_ms

Reply: JSON {r = "ok", removed (seats given back), lines} or {r = "checkout-in-progress"}
]]
--!include parts.lua

local inv, carts, exp = KEYS[1], KEYS[2], KEYS[3]
local cart_id, tier, now = ARGV[1], ARGV[2], tonumber(ARGV[3])

local part = decode_part(redis.call('HGET', carts, cart_id))
if not part then
  return cjson.encode({ r = 'ok', removed = 0 })
end
if part.s == 'checkout' then
  return cjson.encode({ r = 'checkout-in-progress' })
end
if tonumber(part.x) <= now then
  release_part(inv, carts, exp, cart_id, part)
  return cjson.encode({ r = 'ok', removed = 0 })
end

local qty = tonumber(part.l[tier]) or 0
if qty == 0 then
  return cjson.encode({ r = 'ok', removed = 0, lines = part_lines(inv, part) })
end
if redis.call('HEXISTS', inv, tier .. ':held') == 1 then
  local held = redis.call('HINCRBY', inv, tier .. ':held', -qty)
  if held < 0 then redis.call('HSET', inv, tier .. ':held', 0) end
end
part.l[tier] = nil
recount_delta(inv, recount_id(inv), part, tier, -qty)
part.r = nil
if count_lines(part) == 0 then
  redis.call('HDEL', carts, cart_id)
  redis.call('ZREM', exp, cart_id)
  return cjson.encode({ r = 'ok', removed = qty })
end
redis.call('HSET', carts, cart_id, encode_part(part))
return cjson.encode({ r = 'ok', removed = qty, lines = part_lines(inv, part) })
