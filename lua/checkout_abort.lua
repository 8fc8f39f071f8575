--[[
checkout_abort: move a part of order O back from `checkout` to `open`, holds kept, once O
is certainly not committed: an error before the COMMIT was sent, a refusal inside the
transaction, or a look-up that found no O after every transaction that could write O had
ended (service/orders/outcome.py). Never on an ambiguous commit: then the part stays in
checkout until O is resolved.

The part stops naming O (no transaction of O can commit any more, so nothing is left to
find by its id); the next checkout draws a new id. Its hold lives on until the later of
its expiry before the checkout and now + grace, so the buyer can try again.

Idempotent, and safe against a racing apply: only a part in `checkout` naming O moves.

KEYS[1] carts   hash: cart id -> part (JSON)
KEYS[2] exp     sorted set: cart id -> expiry (ms) of open parts
KEYS[3] co      sorted set: cart id -> checkout deadline (ms)

ARGV[1] cart_id
ARGV[2] order_id   O
ARGV[3] now_ms
ARGV[4] grace_ms   the least time the hold still has after the abort (0: its own expiry)

Reply: JSON {r = result, x (the part's expiry, ms, when moved)}
  r = "ok":          moved back to open
  r = "open":        already open (aborted before)
  r = "gone":        no part (applied, released, or never there)
  r = "other-order": the part is in checkout for another order; nothing changed
]]
--!include parts.lua

local carts, exp, co = KEYS[1], KEYS[2], KEYS[3]
local cart_id, order_id = ARGV[1], ARGV[2]
local now, grace = tonumber(ARGV[3]), tonumber(ARGV[4])

local part = decode_part(redis.call('HGET', carts, cart_id))
if not part then
  redis.call('ZREM', co, cart_id)
  return cjson.encode({ r = 'gone' })
end
if part.s == 'open' then
  redis.call('ZREM', co, cart_id)  -- an open part has no place in `co`
  return cjson.encode({ r = 'open', x = part.x })
end
if part.o ~= order_id then
  return cjson.encode({ r = 'other-order' })
end

part.s = 'open'
part.x = math.max(tonumber(part.ox or 0), now + grace)
part.ox = nil
part.o = ''
redis.call('HSET', carts, cart_id, encode_part(part))
redis.call('ZREM', co, cart_id)
redis.call('ZADD', exp, part.x, cart_id)
return cjson.encode({ r = 'ok', x = part.x })
