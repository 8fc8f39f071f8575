--[[
checkout_apply: finish a part whose order O is committed in PostgreSQL. In one atomic
step, O's changes of `quantity_sold` for this event's tiers are counted in `sold` (by the
chain rule of sold.lua) and the part's hold goes (`<tier>:held -= q`, the part deleted).
So O's seats move from `held` to `sold` at once: never counted in both (a buyer refused
while a seat is free) nor in neither (a seat granted twice).

Idempotent: a change counted before is not counted again, and a part that is gone, or
that names another order, is left alone. The API and the worker's recovery and reconcile
may all apply the same order, in any order; its changes are counted even when its part is
gone (a flush, a merge of an old version), since PostgreSQL sold those seats.

KEYS[1] inv     hash: event inventory
KEYS[2] carts   hash: cart id -> part (JSON)
KEYS[3] exp     sorted set: cart id -> expiry (ms) of open parts
KEYS[4] co      sorted set: cart id -> checkout deadline (ms)

ARGV[1] cart_id
ARGV[2] order_id   O
ARGV[3i], ARGV[3i+1], ARGV[3i+2]  tier_id, sold_version, delta: O's change of that tier
                   (for i = 1..n, the event's tiers of O; the order's items say them)

Reply: JSON {r = result, seats (hold released), counted (changes counted now)}
  r = "ok":   the part of O was applied
  r = "gone": no part of O here (applied before, or the part names another order)
]]
--!include parts.lua
--!include sold.lua

local inv, carts, exp, co = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local cart_id, order_id = ARGV[1], ARGV[2]

local counted = count_sold_changes(inv, ARGV, 3)

local part = decode_part(redis.call('HGET', carts, cart_id))
if not part or part.o ~= order_id then
  if not part then redis.call('ZREM', co, cart_id) end
  return cjson.encode({ r = 'gone', counted = counted })
end

local seats = 0
for _, qty in pairs(part.l) do seats = seats + qty end
release_part(inv, carts, exp, cart_id, part)
redis.call('ZREM', co, cart_id)
return cjson.encode({ r = 'ok', seats = seats, counted = counted })
