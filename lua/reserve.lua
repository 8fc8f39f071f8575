--[[
reserve: add to, or set, the quantity of one tier in a cart's part of an event, holding
the seats. Sweeps a bounded number of expired parts first, so seats come back lazily even
when the worker is down. Every change moves the part's expiry to now + ttl.

Invariant kept: a hold of q more seats is granted only while sold + held + q <= total.
Lowering a quantity always succeeds (it gives seats back), even outside the sale window.

KEYS[1] inv       hash: event inventory and tier fields (<tier>:total, :sold, :held, ...)
KEYS[2] carts     hash: cart id -> part (JSON)
KEYS[3] exp       sorted set: cart id -> expiry (ms) of open parts

ARGV[1] cart_id
ARGV[2] tier_id
ARGV[3] quantity     integer >= 0
ARGV[4] mode         "add" (current + quantity) or "set" (quantity; 0 removes the line)
ARGV[5] now_ms
ARGV[6] ttl_ms       hold lifetime
ARGV[7] max_lines    lines one part may have
ARGV[8] sweep_limit  expired parts to release first (bounded)
ARGV[9] request_id   a retried call with the same id changes nothing and answers the same

Reply: JSON {r = result, ...}
  r = "ok":            q (the line's quantity now), prev, x (part expiry, 0 if the part is
                       gone), available (seats left in the tier), lines (part_lines)
  r = "not-loaded":    the tier is not in Redis: load it from PostgreSQL and retry
  r = "sold-out":      available
  r = "limit-exceeded": limit, what ("per-order" | "lines")
  r = "sale-not-open" | "sale-closed" | "inactive": the tier cannot be bought now
  r = "checkout-in-progress": the part is being checked out; nothing changed
]]
--!include parts.lua

local inv, carts, exp = KEYS[1], KEYS[2], KEYS[3]
local cart_id, tier = ARGV[1], ARGV[2]
local qty, mode = tonumber(ARGV[3]), ARGV[4]
local now, ttl = tonumber(ARGV[5]), tonumber(ARGV[6])
local max_lines, sweep_limit, request_id = tonumber(ARGV[7]), tonumber(ARGV[8]), ARGV[9]

sweep_expired(inv, carts, exp, now, sweep_limit)

local t = redis.call('HMGET', inv, tier .. ':total', tier .. ':sold', tier .. ':held',
  tier .. ':max', tier .. ':start', tier .. ':end', tier .. ':active', '_rc')
if not t[1] then
  return cjson.encode({ r = 'not-loaded' })
end
local total, sold, held = tonumber(t[1]), tonumber(t[2]), tonumber(t[3])
local max_per_order, sale_start, sale_end = tonumber(t[4]), tonumber(t[5]), tonumber(t[6])
local active = t[7] == '1'
local rc = t[8]  -- a held recount running on this event (parts.lua), or false

local function available()
  return math.max(0, total - sold - held)
end

local part = decode_part(redis.call('HGET', carts, cart_id))
if part and part.s == 'checkout' then
  return cjson.encode({ r = 'checkout-in-progress' })
end
if part and request_id ~= '' and part.r == request_id then
  -- The same call again (a retry after a timeout): answer as before, change nothing.
  return cjson.encode({ r = 'ok', q = part.q, prev = part.q, x = part.x,
    available = available(), lines = part_lines(inv, part) })
end
if part and tonumber(part.x) <= now then
  -- Expired but not yet swept: its holds are gone; start afresh.
  release_part(inv, carts, exp, cart_id, part)
  held = tonumber(redis.call('HGET', inv, tier .. ':held'))
  part = nil
end
if not part then
  part = { s = 'open', o = '', x = 0, l = {} }
end

local current = tonumber(part.l[tier]) or 0
local wanted = qty
if mode == 'add' then wanted = current + qty end
local delta = wanted - current

if delta > 0 then
  if not active then return cjson.encode({ r = 'inactive' }) end
  if sale_start > 0 and now < sale_start then return cjson.encode({ r = 'sale-not-open' }) end
  if sale_end > 0 and now >= sale_end then return cjson.encode({ r = 'sale-closed' }) end
  if wanted > max_per_order then
    return cjson.encode({ r = 'limit-exceeded', what = 'per-order', limit = max_per_order })
  end
  if current == 0 and count_lines(part) >= max_lines then
    return cjson.encode({ r = 'limit-exceeded', what = 'lines', limit = max_lines })
  end
  if delta > available() then
    return cjson.encode({ r = 'sold-out', available = available() })
  end
end

if delta ~= 0 then
  held = redis.call('HINCRBY', inv, tier .. ':held', delta)
end
if wanted > 0 then
  part.l[tier] = wanted
else
  part.l[tier] = nil
end
recount_delta(inv, rc, part, tier, delta)

if count_lines(part) == 0 then
  redis.call('HDEL', carts, cart_id)
  redis.call('ZREM', exp, cart_id)
  return cjson.encode({ r = 'ok', q = 0, prev = current, x = 0, available = available() })
end

part.x = now + ttl
part.r = request_id
part.q = wanted
redis.call('HSET', carts, cart_id, encode_part(part))
redis.call('ZADD', exp, part.x, cart_id)
return cjson.encode({ r = 'ok', q = wanted, prev = current, x = part.x,
  available = available(), lines = part_lines(inv, part) })
