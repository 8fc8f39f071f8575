--[[
retire_event: remove a finished event's state from Redis in one atomic step, so that
events do not stay in Redis, and in the worker's rounds, forever. Finished means: no part
at all (open or in checkout), and every tier's sale over (inactive, or its sale end
passed). The check and the deletion are one step, so no buyer's change can come between
them. Afterwards the event is simply not loaded: every script answers "not-loaded" for
its tiers and the caller loads them from PostgreSQL, as after a flush (a tier an admin
opened again sells normally; a late read of an ended tier loads it, and a later sweep
retires it again). A tier loaded less than `grace_ms` ago keeps the event: a buyer's
load-then-retry, or an admin's change, is never undone under its feet.

The worker (workers/active_events.py) then takes the event out of its index and its tiers
out of the tier -> event map (`ids` names them); both live in other slots, so that is a
second step (see there for why it is safe).

KEYS[1] inv    hash: event inventory
KEYS[2] carts  hash: cart id -> part (JSON)
KEYS[3] exp    sorted set: cart id -> expiry (ms) of open parts
KEYS[4] co     sorted set: cart id -> checkout deadline (ms)

ARGV[1] now_ms
ARGV[2] grace_ms   how long after its last tier load an event is kept anyway

Reply: JSON {r = result, tiers (how many tiers the inventory had), ids (their ids, when any)}
  r = "retired":  the event's keys were deleted
  r = "gone":     no inventory (never loaded, flushed, or retired before) and no part; any
                  stale entries of `exp` and `co` were deleted
  r = "parts":    a part is left (open or in checkout): nothing changed
  r = "selling":  a tier is active and its sale has not ended: nothing changed
  r = "recent":   a tier was loaded less than grace_ms ago: nothing changed
]]

local inv, carts, exp, co = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now, grace = tonumber(ARGV[1]), tonumber(ARGV[2])

if redis.call('HLEN', carts) > 0 then
  return cjson.encode({ r = 'parts' })
end
if redis.call('EXISTS', inv) == 0 then
  -- Entries without a part are stale (a part is never in `exp` or `co` without itself).
  redis.call('DEL', exp, co)
  return cjson.encode({ r = 'gone', tiers = 0 })
end

local loaded = tonumber(redis.call('HGET', inv, '_loaded') or '0')
if loaded + grace > now then
  return cjson.encode({ r = 'recent' })
end

local ids = {}
for _, field in ipairs(redis.call('HKEYS', inv)) do
  if string.sub(field, -6) == ':total' then
    local tier = string.sub(field, 1, -7)
    local f = redis.call('HMGET', inv, tier .. ':active', tier .. ':end')
    local sale_end = tonumber(f[2]) or 0
    if f[1] == '1' and (sale_end == 0 or sale_end > now) then
      return cjson.encode({ r = 'selling' })
    end
    ids[#ids + 1] = tier
  end
end

redis.call('DEL', inv, carts, exp, co)
if #ids == 0 then  -- cjson writes an empty table as {}: left out, the reply defaults it
  return cjson.encode({ r = 'retired', tiers = 0 })
end
return cjson.encode({ r = 'retired', tiers = #ids, ids = ids })
