--[[
reconcile: make one event's counters right again. For every tier loaded in the event's
inventory, `held` is recomputed from the parts in `carts` and set; each (sold,
sold_version) pair read from PostgreSQL is installed by the version rule. Atomic for the
event, so the recomputed `held` is exact at this instant whatever runs around it.

Which parts count: every part in `carts`, whatever its state or expiry. An open part past
its expiry still holds its seats until a sweep releases it, and that sweep subtracts its
quantities from `held`; leaving it out here would make the sweep subtract them twice.
Parts in checkout hold their seats until their apply (or move back) runs.

Bounded: reading the parts costs about 4 us each, all in one atomic step, so an event with
more than `max_parts` parts (a flash sale with 100,000 open carts would block Redis for
about half a second) keeps its `held` this time (`counted` = false); its sold pairs are
still installed. The scripts keep `held` in step with the parts anyway; the recount is the
safety net, and it runs again once the event is below the bound.

Sold: a pair is installed only if its version is newer than `<tier>:sold_v`, so a stale
PostgreSQL read (taken before this call) can never lower `sold` below a newer truth. One
exception, also safe: at the same version with a different number Redis was written
outside the version rule; PostgreSQL's number for that version is the truth, so it is set.
A tier missing from the inventory is reported in `missing` and never created here.

KEYS[1] inv    hash: event inventory
KEYS[2] carts  hash: cart id -> part (JSON)

ARGV[1] max_parts   recount `held` only when the event has at most this many parts
ARGV[3i-1] tier_id, ARGV[3i] sold, ARGV[3i+1] sold_version   (for i = 1..n; n may be 0)

Reply: JSON {r = "ok", counted (whether the parts were recounted), parts (how many),
  tiers = {[tier_id] = {held_before, held, sold_before, sold_v_before, sold, sold_v,
           checkout (seats of the tier in parts that name an order; -1 when not counted),
           v (definition version)}},
  missing = [tier ids given in ARGV that the inventory does not have]}
Invariant kept: `held` = the seats of the parts present; `sold` never goes back in version.
]]
--!include parts.lua

local inv, carts = KEYS[1], KEYS[2]
local max_parts = tonumber(ARGV[1])

-- Seats per tier in all parts, and in parts that name an order (in checkout, or moved
-- back to open still naming it): their seats may be committed and about to be applied.
local holding, in_checkout = {}, {}
local parts = redis.call('HLEN', carts)
local counted = parts <= max_parts
if counted then
  local entries = redis.call('HGETALL', carts)
  for i = 2, #entries, 2 do
    local part = decode_part(entries[i])
    local ordered = part.s == 'checkout' or (part.o ~= nil and part.o ~= '')
    for tier, qty in pairs(part.l) do
      holding[tier] = (holding[tier] or 0) + qty
      if ordered then
        in_checkout[tier] = (in_checkout[tier] or 0) + qty
      end
    end
  end
end

local tiers = {}
for _, field in ipairs(redis.call('HKEYS', inv)) do
  if string.sub(field, -6) == ':total' then
    local tier = string.sub(field, 1, -7)
    local f = redis.call('HMGET', inv, tier .. ':held', tier .. ':sold', tier .. ':sold_v',
      tier .. ':v')
    local held, checkout = tonumber(f[1]) or 0, -1
    if counted then
      held, checkout = holding[tier] or 0, in_checkout[tier] or 0
      if tonumber(f[1]) ~= held then
        redis.call('HSET', inv, tier .. ':held', held)
      end
    end
    tiers[tier] = { held_before = tonumber(f[1]) or 0, held = held,
      sold_before = tonumber(f[2]) or 0, sold_v_before = tonumber(f[3]) or -1,
      sold = tonumber(f[2]) or 0, sold_v = tonumber(f[3]) or -1,
      checkout = checkout, v = tonumber(f[4]) or 0 }
  end
end

local missing = {}
for i = 2, #ARGV, 3 do
  local tier, sold, version = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local t = tiers[tier]
  if not t then
    table.insert(missing, tier)
  elseif version > t.sold_v or (version == t.sold_v and sold ~= t.sold) then
    redis.call('HSET', inv, tier .. ':sold', sold, tier .. ':sold_v', version)
    t.sold, t.sold_v = sold, version
  end
end

return cjson.encode({ r = 'ok', counted = counted, parts = parts, tiers = nonempty(tiers),
  missing = nonempty(missing) })
