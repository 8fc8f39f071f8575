-- Shared helpers for scripts that touch an event's cart parts. Included textually by the
-- loader (service/redis/scripts.py) where a script says `--!include parts.lua`.
--
-- A part is one cart's share of one event, stored as JSON in the event's `carts` hash:
--   { s = "open"|"checkout",  -- state
--     o = order id or "",     -- chosen by checkout_begin, kept until applied or released
--     x = expiry (ms),        -- open: hold expiry; checkout: checkout deadline
--     l = { [tier_id] = quantity, ... },
--     r = last request id applied (makes a retried add idempotent),
--     q = the quantity that request left on its line,
--     k = the id of the last held recount that counted it (recount_held.lua) }
-- Every held seat is counted in `<tier>:held` of the event's `inv` hash; releasing a
-- part gives its seats back there and deletes the part in the same script.

-- cjson cannot tell an empty object from an empty array: leave empty tables out of
-- replies (the Python side defaults them to {}).
local function nonempty(t)
  if next(t) == nil then return nil end
  return t
end

local function decode_part(raw)
  if not raw then return nil end
  return cjson.decode(raw)
end

local function encode_part(part)
  return cjson.encode(part)
end

-- The chunked recount of `held` (recount_held.lua) keeps, while it runs, the seats of the
-- parts it has counted in `<tier>:rc` of `inv`, marks each counted part with its id
-- (`k`), and names itself in `inv` field `_rc`. Every script that changes a part's lines
-- or deletes a part tells it through the two helpers below, so its sums always equal the
-- seats of the marked parts as they are now, whatever runs between its chunks.

-- The running recount's id, or false when none runs.
local function recount_id(inv)
  return redis.call('HGET', inv, '_rc')
end

-- Call after `part.l[tier]` changed by `delta` seats (part.l already changed). A part the
-- recount counted: its sum follows the change. One it has not counted yet is counted now,
-- as it is after the change, and marked, so the recount's scan skips it.
local function recount_delta(inv, rc, part, tier, delta)
  if not rc then return end
  if part.k == rc then
    if delta ~= 0 then redis.call('HINCRBY', inv, tier .. ':rc', delta) end
  else
    for t, qty in pairs(part.l) do
      redis.call('HINCRBY', inv, t .. ':rc', qty)
    end
    part.k = rc
  end
end

-- Call before deleting `part`: a part the recount counted leaves its sums.
local function recount_drop(inv, rc, part)
  if rc and part.k == rc then
    for t, qty in pairs(part.l) do
      redis.call('HINCRBY', inv, t .. ':rc', -qty)
    end
  end
end

-- Gives the part's seats back and deletes it. `part` is the decoded part.
local function release_part(inv, carts, exp, cart_id, part)
  recount_drop(inv, recount_id(inv), part)
  for tier, qty in pairs(part.l) do
    if redis.call('HEXISTS', inv, tier .. ':held') == 1 then
      local held = redis.call('HINCRBY', inv, tier .. ':held', -qty)
      if held < 0 then
        -- Only after an admin reload or a flush raced a part; never go negative.
        redis.call('HSET', inv, tier .. ':held', 0)
      end
    end
  end
  redis.call('HDEL', carts, cart_id)
  redis.call('ZREM', exp, cart_id)
end

-- Releases up to `limit` open parts whose expiry is at or before `now`.
-- Returns the number released. Parts in checkout are never in `exp` (they live in the
-- event's `co` set), so they can never be swept here.
local function sweep_expired(inv, carts, exp, now, limit)
  local due = redis.call('ZRANGEBYSCORE', exp, '-inf', now, 'LIMIT', 0, limit)
  local released = 0
  for _, cart_id in ipairs(due) do
    local part = decode_part(redis.call('HGET', carts, cart_id))
    if not part then
      redis.call('ZREM', exp, cart_id)
    elseif part.s == 'open' and tonumber(part.x) <= now then
      release_part(inv, carts, exp, cart_id, part)
      released = released + 1
    else
      -- Score out of step with the part (cannot happen through these scripts): fix it.
      redis.call('ZADD', exp, part.x, cart_id)
    end
  end
  return released
end

-- The lines of a part as the API shows them, with each tier's catalogue fields (one
-- HMGET for all of them).
local function part_lines(inv, part)
  local tiers, fields = {}, {}
  for tier in pairs(part.l) do
    tiers[#tiers + 1] = tier
    local n = #fields
    fields[n + 1], fields[n + 2] = tier .. ':name', tier .. ':price'
    fields[n + 3], fields[n + 4] = tier .. ':cur', tier .. ':max'
  end
  if #tiers == 0 then return nil end
  local f = redis.call('HMGET', inv, unpack(fields))
  local lines = {}
  for i, tier in ipairs(tiers) do
    local b = (i - 1) * 4
    lines[tier] = { q = part.l[tier], n = f[b + 1] or '', p = tonumber(f[b + 2]) or 0,
      c = f[b + 3] or '', m = tonumber(f[b + 4]) or 0 }
  end
  return lines
end

local function count_lines(part)
  local n = 0
  for _ in pairs(part.l) do n = n + 1 end
  return n
end
