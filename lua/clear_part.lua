--[[
clear_part: empty a cart's part of an event, giving every held seat back. Idempotent.

KEYS[1] inv    hash: event inventory
KEYS[2] carts  hash: cart id -> part (JSON)
KEYS[3] exp    sorted set: cart id -> expiry (ms)

ARGV[1] cart_id

Reply: JSON {r = "ok", released (seats given back)} or {r = "checkout-in-progress"}
]]
--!include parts.lua

local inv, carts, exp = KEYS[1], KEYS[2], KEYS[3]
local cart_id = ARGV[1]

local part = decode_part(redis.call('HGET', carts, cart_id))
if not part then
  return cjson.encode({ r = 'ok', released = 0 })
end
if part.s == 'checkout' then
  return cjson.encode({ r = 'checkout-in-progress' })
end
local seats = 0
for _, qty in pairs(part.l) do seats = seats + qty end
release_part(inv, carts, exp, cart_id, part)
return cjson.encode({ r = 'ok', released = seats })
