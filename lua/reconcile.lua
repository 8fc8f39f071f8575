--[[
reconcile: make one event's counters right again, in one atomic step:
1. apply the parts of committed orders the caller found in PostgreSQL (`applied`): their
   changes of `quantity_sold` are counted and their holds released, as checkout_apply does
   (a checkout that stopped between its commit and its apply);
2. for every tier loaded in the event's inventory, recompute `held` from the parts in
   `carts` and set it;
3. install each (sold, sold_version) pair read from PostgreSQL by the rule of sold.lua.
The caller reads the pairs first, then the parts in checkout, then looks their orders up:
so every order a pair counts is either applied in step 1 or was applied before, and no
seat is counted in both `sold` and `held` afterwards.

Which parts count for `held`: every part in `carts`, whatever its state or expiry. An open
part past its expiry still holds its seats until a sweep releases it, and that sweep
subtracts its quantities from `held`; leaving it out here would make the sweep subtract
them twice. Parts in checkout hold their seats until their apply (or move back) runs.

Bounded: reading the parts costs about 4 us each, all in one atomic step, so an event with
more than `max_parts` parts (a flash sale with 100,000 open carts would block Redis for
about half a second) is not recounted here (`counted` = false); its committed parts are
still applied and its sold pairs installed, and the worker then recounts its `held` in
bounded chunks with recount_held.lua.

Sold: a pair is installed only if its version is newer than what Redis has counted, so a
stale PostgreSQL read (taken before this call) can never lower `sold` below a newer truth.
One exception, also safe: at the same version with a different number Redis was written
outside the version rule; PostgreSQL's number for that version is the truth, so it is set.
A tier missing from the inventory is reported in `missing` and never created here.

KEYS[1] inv    hash: event inventory
KEYS[2] carts  hash: cart id -> part (JSON)
KEYS[3] exp    sorted set: cart id -> expiry (ms) of open parts
KEYS[4] co     sorted set: cart id -> checkout deadline (ms)

ARGV[1] max_parts   recount `held` only when the event has at most this many parts
ARGV[2] applied     JSON list of committed orders' parts to apply:
                    [ {"c": cart id, "o": order id, "s": [ [tier, sold_version, delta], ... ]} ]
ARGV[3i], ARGV[3i+1], ARGV[3i+2]  tier_id, sold, sold_version  (for i = 1..n; n may be 0)

Reply: JSON {r = "ok", counted (whether the parts were recounted), parts (how many),
  applied (committed parts applied now),
  tiers = {[tier_id] = {held_before, held, sold_before, sold_v_before, sold, sold_v,
           checkout (seats of the tier in parts that name an order; -1 when not counted),
           v (definition version)}},
  missing = [tier ids given in ARGV that the inventory does not have]}
Invariant kept: `held` = the seats of the parts present; `sold` never goes back in version.
]]
--!include parts.lua
--!include sold.lua

local inv, carts, exp, co = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local max_parts = tonumber(ARGV[1])

local applied = 0
for _, order in ipairs(cjson.decode(ARGV[2])) do
  for _, change in ipairs(order.s) do
    count_sold_change(inv, change[1], tonumber(change[2]), tonumber(change[3]))
  end
  local part = decode_part(redis.call('HGET', carts, order.c))
  if part and part.o == order.o then
    release_part(inv, carts, exp, order.c, part)
    redis.call('ZREM', co, order.c)
    applied = applied + 1
  end
end

-- Seats per tier in all parts, and in parts that name an order (in checkout; an open part
-- naming one is left by an older version): their order's outcome is not known yet.
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
for i = 3, #ARGV, 3 do
  local tier, sold, version = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local t = tiers[tier]
  if not t then
    table.insert(missing, tier)
  elseif install_sold_pair(inv, tier, sold, version, true) then
    local f = redis.call('HMGET', inv, tier .. ':sold', tier .. ':sold_v')
    t.sold, t.sold_v = tonumber(f[1]), tonumber(f[2])
  end
end

return cjson.encode({ r = 'ok', counted = counted, parts = parts, applied = applied,
  tiers = nonempty(tiers),
  missing = nonempty(missing) })
