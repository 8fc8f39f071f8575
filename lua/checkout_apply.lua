--[[
checkout_apply: finish a part whose order O is committed in PostgreSQL: its seats are
sold now, so its hold goes (`<tier>:held -= q` for each line) and the part is deleted.
Idempotent: a part that is gone, or that names another order, is left alone, so the
API and the worker's recovery may both apply the same part, in either order.

A part moved back to `open` (a recovery that looked O up just before the commit landed,
or a checkout that took the commit's timeout for a failure) still names O: it is applied
all the same, because its seats are in O.

The caller installs the (sold, sold_version) pairs the transaction returned with
install_sold in the same pipeline, just before this script: for that moment the seats
count in both `sold` and `held`, so availability errs only towards fewer seats.

KEYS[1] inv     hash: event inventory
KEYS[2] carts   hash: cart id -> part (JSON)
KEYS[3] exp     sorted set: cart id -> expiry (ms) of open parts
KEYS[4] co      sorted set: cart id -> checkout deadline (ms)

ARGV[1] cart_id
ARGV[2] order_id   O

Reply: JSON {r = "ok", seats (hold released)}, or {r = "gone"} when there was nothing
  of O to apply (applied before, or the part names another order)
]]
--!include parts.lua

local inv, carts, exp, co = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local cart_id, order_id = ARGV[1], ARGV[2]

local part = decode_part(redis.call('HGET', carts, cart_id))
if not part or part.o ~= order_id then
  if not part then redis.call('ZREM', co, cart_id) end
  return cjson.encode({ r = 'gone' })
end

local seats = 0
for _, qty in pairs(part.l) do seats = seats + qty end
release_part(inv, carts, exp, cart_id, part)
redis.call('ZREM', co, cart_id)
return cjson.encode({ r = 'ok', seats = seats })
