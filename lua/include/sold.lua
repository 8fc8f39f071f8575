-- Shared helpers for scripts that count seats sold. Included textually by the loader
-- (service/redis/scripts.py) where a script says `--!include sold.lua`.
--
-- Redis `<tier>:sold` is a cache of PostgreSQL's `quantity_sold`, never a second truth.
-- Every change of `quantity_sold` bumps the row's `sold_version` by exactly one, and the
-- tier's rows are locked while it changes, so the changes of a tier form one chain:
-- version v is the change that turned the count at v-1 into the count at v. Redis keeps:
--   <tier>:sold     every seat of the changes counted so far
--   <tier>:sold_v   the chain is counted up to here: every change <= sold_v is in `sold`
--   <tier>:ahead    JSON {"<version>": delta} of changes above sold_v counted already
--                   (applied before a lower version arrived); absent when there are none
--
-- Two ways in:
-- * count_sold_change(v, delta): one committed change (a checkout's apply, a cancel, an
--   expiry, a late payment). Counted once, whatever the order of arrival. A checkout's
--   apply counts its change in the same script that releases its part's hold, so its
--   seats are never in both `sold` and `held`: availability is exact, not just safe.
-- * install_sold_pair(sold, v): PostgreSQL's count as read (a tier load, the reconciler).
--   It covers every change <= v; the ahead entries above v are kept on top of it. The
--   caller must have applied the committed checkouts <= v first (the reconciler does, in
--   the same script), else their seats count twice (sold and held) until their apply: an
--   error that refuses a buyer, never one that oversells.

local function decode_ahead(raw)
  if not raw then return {} end
  local ahead = cjson.decode(raw)
  if type(ahead) ~= 'table' then return {} end
  return ahead
end

local function store_ahead(inv, tier, ahead)
  if next(ahead) == nil then
    redis.call('HDEL', inv, tier .. ':ahead')
  else
    redis.call('HSET', inv, tier .. ':ahead', cjson.encode(ahead))
  end
end

-- Moves sold_v up over the ahead entries that now follow it without a gap.
local function fold_ahead(ahead, version)
  while ahead[tostring(version + 1)] ~= nil do
    ahead[tostring(version + 1)] = nil
    version = version + 1
  end
  return version
end

-- Counts one committed change of the tier's quantity_sold. Returns true when counted now,
-- false when it was counted before (or the tier is not in Redis: its next load reads
-- PostgreSQL, which has it).
local function count_sold_change(inv, tier, version, delta)
  local f = redis.call('HMGET', inv, tier .. ':total', tier .. ':sold_v', tier .. ':ahead')
  if not f[1] then return false end
  local have = tonumber(f[2]) or -1
  if version <= have then return false end
  local ahead = decode_ahead(f[3])
  local key = tostring(version)
  if ahead[key] ~= nil then return false end
  redis.call('HINCRBY', inv, tier .. ':sold', delta)
  if version == have + 1 then
    redis.call('HSET', inv, tier .. ':sold_v', fold_ahead(ahead, version))
  else
    ahead[key] = delta
  end
  store_ahead(inv, tier, ahead)
  return true
end

-- Counts the (tier_id, sold_version, delta) triples of args[first..]; how many were new.
local function count_sold_changes(inv, args, first)
  local counted = 0
  for i = first, #args, 3 do
    if count_sold_change(inv, args[i], tonumber(args[i + 1]), tonumber(args[i + 2])) then
      counted = counted + 1
    end
  end
  return counted
end

-- Installs PostgreSQL's (sold, version) of the tier when it is newer than what Redis has
-- counted. With `repair`, the same version is installed too when Redis's number differs
-- (it was written outside these rules). Returns true when `sold` or `sold_v` changed.
local function install_sold_pair(inv, tier, sold, version, repair)
  local f = redis.call('HMGET', inv, tier .. ':total', tier .. ':sold', tier .. ':sold_v',
    tier .. ':ahead')
  if not f[1] then return false end
  local have = tonumber(f[3]) or -1
  if version < have or (version == have and not repair) then return false end
  local ahead = decode_ahead(f[4])
  local on_top = 0
  for key, delta in pairs(ahead) do
    if tonumber(key) <= version then
      ahead[key] = nil
    else
      on_top = on_top + delta
    end
  end
  local counted = fold_ahead(ahead, version)
  local new_sold = sold + on_top
  if counted == have and new_sold == tonumber(f[2]) then return false end
  redis.call('HSET', inv, tier .. ':sold', new_sold, tier .. ':sold_v', counted)
  store_ahead(inv, tier, ahead)
  return true
end
