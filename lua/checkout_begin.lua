--[[
checkout_begin: move a cart's part of an event into `checkout` under order id O, and
answer its lines, so the checkout can write the order in PostgreSQL while no one can
change, sweep or release those seats.

The part keeps the order id it is given until it is applied or released: a retried
checkout reuses it, so a PostgreSQL commit that landed after a timeout is found by its
primary key instead of becoming a second order. Which id a part takes:
  - the part names no order yet, or names O, or names `replace` -> O;
  - the part names another order id -> it keeps its own id (the caller sees `o` differ
    from O and resolves it; see service/orders/checkout.py).
A part already in `checkout` (a try that crashed before its deadline) is taken over as
it is; its deadline moves to the later of the two.

Invariant kept: a part in `checkout` is in `co` (scored by its deadline) and not in
`exp`, so no sweep can release seats that may be committed in PostgreSQL. Its hold
stays counted in `<tier>:held` until checkout_apply or checkout_abort.

KEYS[1] inv     hash: event inventory (<tier>:held, tier fields for the lines)
KEYS[2] carts   hash: cart id -> part (JSON)
KEYS[3] exp     sorted set: cart id -> expiry (ms) of open parts
KEYS[4] co      sorted set: cart id -> checkout deadline (ms) of parts in checkout

ARGV[1] cart_id
ARGV[2] order_id     O, the order id this checkout proposes
ARGV[3] replace      an order id the part may give up for O ("" for none)
ARGV[4] now_ms
ARGV[5] deadline_ms  when the worker may resolve the part against PostgreSQL

Reply: JSON {r = result, ...}
  r = "ok":          o (the order id the part names now), ox (its hold expiry before the
                     checkout, ms), lines (part_lines: {[tier] = {q, n, p, c, m}})
  r = "empty":       no part, or a part without lines: nothing to check out here
  r = "expired":     the open part's hold had expired: it was released (seats given back)
  r = "not-loaded":  a line's tier is missing from `inv` (partial loss): nothing changed;
                     load the tiers (`tiers`) from PostgreSQL and begin again
]]
--!include parts.lua

local inv, carts, exp, co = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local cart_id, order_id, replace = ARGV[1], ARGV[2], ARGV[3]
local now, deadline = tonumber(ARGV[4]), tonumber(ARGV[5])

local part = decode_part(redis.call('HGET', carts, cart_id))
if not part or count_lines(part) == 0 then
  return cjson.encode({ r = 'empty' })
end

if part.s == 'open' and tonumber(part.x) <= now then
  release_part(inv, carts, exp, cart_id, part)
  redis.call('ZREM', co, cart_id)
  return cjson.encode({ r = 'expired' })
end

-- Never price a line from nothing: a tier missing from Redis must be loaded first.
local missing = {}
for tier in pairs(part.l) do
  if redis.call('HEXISTS', inv, tier .. ':price') == 0 then
    missing[#missing + 1] = tier
  end
end
if #missing > 0 then
  return cjson.encode({ r = 'not-loaded', tiers = missing })
end

if part.s == 'open' then
  part.ox = part.x
  part.x = deadline
else
  part.x = math.max(tonumber(part.x), deadline)
end
local named = part.o or ''
if named == '' or named == order_id or (replace ~= '' and named == replace) then
  part.o = order_id
end
part.s = 'checkout'

redis.call('HSET', carts, cart_id, encode_part(part))
redis.call('ZREM', exp, cart_id)
redis.call('ZADD', co, part.x, cart_id)
return cjson.encode({ r = 'ok', o = part.o, ox = part.ox, lines = part_lines(inv, part) })
