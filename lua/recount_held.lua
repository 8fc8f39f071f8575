--[[
recount_held: recount one event's `held` from its parts in bounded chunks, so an event of
any size is recounted without one long atomic step (reconcile.lua recounts small events
in one step; this is for the others). The worker calls it in a loop: the first call
(cursor "0") begins a recount under a new random id, each call reads about `count` parts
(HSCAN), and the call whose scan comes back to cursor 0 sets each tier's `held`.

How it stays exact while carts change between its calls:
- `_rc` in `inv` names the running recount; `<tier>:rc` in `inv` holds, per tier, the
  seats of the parts it has counted; each counted part is marked `k` = the recount's id.
- A call counts the parts its HSCAN returns that are not marked yet, and marks them (a part
  HSCAN returns twice is counted once).
- Every script that changes a part's lines or deletes a part while `_rc` is set tells the
  recount (parts.lua: recount_delta, recount_drop, and release_part): a marked part's
  change goes into the sums; an unmarked part that changes is counted as it is after the
  change, and marked. A part created during the recount is counted by the script that
  creates it.
So the sums always equal the seats of the marked parts as they are now. HSCAN returns
every part present from the first call to the last at least once; every other part was
created or changed meanwhile, and so marked by its script. At the last call every part is
marked: the sums are the seats of all parts at that moment, and `held` is set to them in
the same step. A script that is not a part writer (a manual edit, eviction) is what the
recount corrects, as the one-step recount does.

A new recount (a new id) takes over from one that is running (another worker, or one that
died half-way: its `_rc` and sums stay until then, costing the scripts an HINCRBY per
change): its sums start at 0 and no part carries its id yet. The old one's next call
answers "superseded" and changes nothing. Never call again with the same id after an
error: a begin repeated under one id answers "superseded" too, since the parts the first
call marked would be skipped.

KEYS[1] inv    hash: event inventory (`<tier>:held`, and `_rc`, `<tier>:rc` while it runs)
KEYS[2] carts  hash: cart id -> part (JSON)

ARGV[1] id       this recount's id (random, never reused)
ARGV[2] cursor   "0" to begin; then the cursor the previous call answered
ARGV[3] count    parts to read in this call (HSCAN's COUNT: about that many)

Reply: JSON {r = result, ...}
  r = "more":        cursor (pass it to the next call), seen (parts read by this call)
  r = "done":        seen, tiers = {[tier_id] = {held_before, held}}: `held` was set
  r = "superseded":  another recount began since (or this id began twice): nothing changed
  r = "not-loaded":  the event has no inventory (never loaded, flushed, or retired):
                     nothing to recount, nothing changed
]]
--!include parts.lua

local inv, carts = KEYS[1], KEYS[2]
local id, cursor, count = ARGV[1], ARGV[2], tonumber(ARGV[3])

if redis.call('EXISTS', inv) == 0 then
  return cjson.encode({ r = 'not-loaded' })
end

-- The inventory's fields ending in `suffix`, by tier.
local function tier_fields(suffix)
  local found = {}
  for _, field in ipairs(redis.call('HKEYS', inv)) do
    if string.sub(field, -#suffix) == suffix then
      found[string.sub(field, 1, -#suffix - 1)] = field
    end
  end
  return found
end

local running = redis.call('HGET', inv, '_rc')
if cursor == '0' then
  if running == id then
    return cjson.encode({ r = 'superseded' })
  end
  local old = {}
  for _, field in pairs(tier_fields(':rc')) do old[#old + 1] = field end
  if #old > 0 then redis.call('HDEL', inv, unpack(old)) end
  redis.call('HSET', inv, '_rc', id)
elseif running ~= id then
  return cjson.encode({ r = 'superseded' })
end

local scan = redis.call('HSCAN', carts, cursor, 'COUNT', count)
local entries = scan[2]
for i = 1, #entries, 2 do
  local part = decode_part(entries[i + 1])
  if part.k ~= id then
    for tier, qty in pairs(part.l) do
      redis.call('HINCRBY', inv, tier .. ':rc', qty)
    end
    part.k = id
    redis.call('HSET', carts, entries[i], encode_part(part))
  end
end
local seen = #entries / 2
if scan[1] ~= '0' then
  return cjson.encode({ r = 'more', cursor = scan[1], seen = seen })
end

-- Every part is marked: the sums are the seats of the parts now.
local sums = tier_fields(':rc')
local tiers, done = {}, {}
for tier in pairs(tier_fields(':total')) do
  local f = redis.call('HMGET', inv, tier .. ':held', tier .. ':rc')
  local before, held = tonumber(f[1]) or 0, tonumber(f[2]) or 0
  if before ~= held or not f[1] then
    redis.call('HSET', inv, tier .. ':held', held)
  end
  tiers[tier] = { held_before = before, held = held }
end
for _, field in pairs(sums) do done[#done + 1] = field end
redis.call('HDEL', inv, '_rc', unpack(done))
return cjson.encode({ r = 'done', seen = seen, tiers = nonempty(tiers) })
