--[[
checkout_abort: move a part of order O back from `checkout` to `open`, holds kept, when
O was not committed (a PostgreSQL failure, a refusal, or the worker finding no order O
after the checkout deadline). The part keeps naming O, so a commit of O that lands late
can never become a second order: the next checkout reuses O and meets it by its primary
key. Its hold lives on until the later of its expiry before the checkout and now + grace,
so the buyer can try again. Only when O is known to be committed without this part (the
part came into the cart after O's first try) does the part forget O (`forget`): else the
next checkout would reuse O, meet the committed order, and never sell this part.

Idempotent, and safe against a racing apply: only a part in `checkout` naming O moves.

KEYS[1] carts   hash: cart id -> part (JSON)
KEYS[2] exp     sorted set: cart id -> expiry (ms) of open parts
KEYS[3] co      sorted set: cart id -> checkout deadline (ms)

ARGV[1] cart_id
ARGV[2] order_id   O
ARGV[3] now_ms
ARGV[4] grace_ms   the least time the hold still has after the abort (0: its own expiry)
ARGV[5] forget     "1": the part no longer names O; "0": it keeps O

Reply: JSON {r = result, x (the part's expiry, ms, when moved)}
  r = "ok":          moved back to open
  r = "open":        already open (aborted before)
  r = "gone":        no part (applied, released, or never there)
  r = "other-order": the part is in checkout for another order; nothing changed
]]
--!include parts.lua

local carts, exp, co = KEYS[1], KEYS[2], KEYS[3]
local cart_id, order_id = ARGV[1], ARGV[2]
local now, grace, forget = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5] == '1'

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
if forget then part.o = '' end
redis.call('HSET', carts, cart_id, encode_part(part))
redis.call('ZREM', co, cart_id)
redis.call('ZADD', exp, part.x, cart_id)
return cjson.encode({ r = 'ok', x = part.x })
