--[[
view: read a cart's part of an event, with each line's tier fields. Read-only: an
expired part that the sweep has not reached yet shows as empty (its holds are gone).

KEYS[1] inv    hash: event inventory
KEYS[2] carts  hash: cart id -> part (JSON)

ARGV[1] cart_id
ARGV[2] now_ms

Reply: JSON {r = "ok", s (state, "" when there is no part), x (expiry ms), o (order id),
  lines = {[tier_id] = {q, n (name), p (unit price), c (currency), m (max per order)}}}
]]
--!include parts.lua

local inv, carts = KEYS[1], KEYS[2]
local cart_id, now = ARGV[1], tonumber(ARGV[2])

local part = decode_part(redis.call('HGET', carts, cart_id))
if not part or (part.s == 'open' and tonumber(part.x) <= now) then
  return cjson.encode({ r = 'ok', s = '', x = 0, o = '' })
end
return cjson.encode({ r = 'ok', s = part.s, x = part.x, o = part.o,
  lines = part_lines(inv, part) })
