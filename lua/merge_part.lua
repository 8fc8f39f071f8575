--[[
merge_part: move a guest cart's part of an event into a signed-in user's part of the same
event (both parts live in the event's `carts` hash, so this is one atomic step). Each of
the guest's lines is added to the user's line, capped at the tier's max_per_order; the
seats over the cap, and whole new lines over the part's line limit, are given back. The
guest part is deleted. Running it again finds no guest part and changes nothing.

Invariant kept: `<tier>:held` stays exact. Seats that move from one part to the other stay
held; only the capped overflow is released. No hold the user already had is ever lowered
(a line above a since-lowered cap keeps what it holds), and nothing new is held, so the
sale window and `sold + held <= total` need no check.

KEYS[1] inv    hash: event inventory (<tier>:held, <tier>:max, ...)
KEYS[2] carts  hash: cart id -> part (JSON)
KEYS[3] exp    sorted set: cart id -> expiry (ms) of open parts

ARGV[1] guest_cart_id
ARGV[2] user_cart_id
ARGV[3] now_ms
ARGV[4] ttl_ms       the merged part's hold lifetime (a merge is activity, like a reserve)
ARGV[5] max_lines    lines one part may have

Reply: JSON {r = result, ...}
  r = "ok":              moved (guest seats now in the user's part), released (seats given
                         back), capped = [{t (tier), requested, kept}] (absent when none),
                         x (the user part's expiry, 0 if it has none), lines (part_lines)
  r = "guest-checkout" | "user-checkout": that part is being checked out; nothing changed
]]
--!include parts.lua

local inv, carts, exp = KEYS[1], KEYS[2], KEYS[3]
local guest_id, user_id = ARGV[1], ARGV[2]
local now, ttl, max_lines = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])

local function give_back(tier, qty)
  if qty > 0 and redis.call('HEXISTS', inv, tier .. ':held') == 1 then
    local held = redis.call('HINCRBY', inv, tier .. ':held', -qty)
    if held < 0 then redis.call('HSET', inv, tier .. ':held', 0) end
  end
end

local rc = recount_id(inv)  -- a held recount running on this event (parts.lua), or false
local guest = decode_part(redis.call('HGET', carts, guest_id))
local user = decode_part(redis.call('HGET', carts, user_id))
if guest and guest.s == 'checkout' then
  return cjson.encode({ r = 'guest-checkout' })
end
if user and user.s == 'checkout' then
  return cjson.encode({ r = 'user-checkout' })
end
if guest and tonumber(guest.x) <= now then
  -- Expired but not yet swept: its holds are gone already in the buyer's eyes.
  release_part(inv, carts, exp, guest_id, guest)
  guest = nil
end
if user and tonumber(user.x) <= now then
  release_part(inv, carts, exp, user_id, user)
  user = nil
end
if not guest then
  if not user then
    return cjson.encode({ r = 'ok', moved = 0, released = 0, x = 0 })
  end
  return cjson.encode({ r = 'ok', moved = 0, released = 0, x = user.x, lines = part_lines(inv, user) })
end
if not user then
  user = { s = 'open', o = '', x = 0, l = {} }
end

-- Sorted, so which lines fall over the line limit does not depend on hash order.
local tiers = {}
for tier in pairs(guest.l) do tiers[#tiers + 1] = tier end
table.sort(tiers)

local lines = count_lines(user)
local moved, released, capped = 0, 0, {}
for _, tier in ipairs(tiers) do
  local add = tonumber(guest.l[tier])
  local have = tonumber(user.l[tier]) or 0
  local kept
  if have == 0 and lines >= max_lines then
    kept = 0
  else
    local cap = tonumber(redis.call('HGET', inv, tier .. ':max'))
    kept = have + add
    if cap and kept > cap then kept = math.max(have, cap) end
  end
  if kept < have + add then
    capped[#capped + 1] = { t = tier, requested = have + add, kept = kept }
  end
  give_back(tier, have + add - kept)
  released = released + (have + add - kept)
  moved = moved + (kept - have)
  if kept > 0 then
    if have == 0 then lines = lines + 1 end
    user.l[tier] = kept
  end
  recount_delta(inv, rc, user, tier, kept - have)
end

recount_drop(inv, rc, guest)
redis.call('HDEL', carts, guest_id)
redis.call('ZREM', exp, guest_id)
if count_lines(user) == 0 then
  return cjson.encode({ r = 'ok', moved = 0, released = released, x = 0, capped = nonempty(capped) })
end
user.x = now + ttl
redis.call('HSET', carts, user_id, encode_part(user))
redis.call('ZADD', exp, user.x, user_id)
return cjson.encode({ r = 'ok', moved = moved, released = released, x = user.x,
  capped = nonempty(capped), lines = part_lines(inv, user) })
