--[[
rate_limit: GCRA (generic cell rate algorithm) for one subject, e.g. one cart's promo
attempts or one client address's API calls. O(1) memory: one string key per subject
holding its "theoretical arrival time" (TAT, microseconds). A request of cost c is
allowed when, after it, the TAT is at most `burst` emission intervals ahead of now;
a refused request changes nothing, so a refused caller does not push its own wait out.

Invariant kept: over any stretch of time t, at most burst + t / (period / limit) units
are allowed, so `burst` calls may come at once and then `limit` per `period`.

KEYS[1] key         string: the subject's TAT in microseconds (expires when the bucket is full)

ARGV[1] limit       units allowed per period, integer >= 1
ARGV[2] period_ms   length of the period, e.g. 60000 for "per minute"
ARGV[3] burst       units that may be spent at once, integer >= 1 (the bucket's size)
ARGV[4] now_ms      the caller's clock
ARGV[5] cost        units this request spends, integer >= 1 (optional, default 1); a cost
                    above burst is never allowed

Reply: JSON {r = "ok", allowed, remaining, retry_after_ms, reset_ms}
  allowed         true if the request may go ahead (and was counted), else false
  remaining       units that could still be spent right now after this request
  retry_after_ms  when refused: how long until this request would be allowed; else 0
  reset_ms        how long until the bucket is full again (nothing spent)
]]

local key = KEYS[1]
local limit, period_ms = tonumber(ARGV[1]), tonumber(ARGV[2])
local burst, now_ms = tonumber(ARGV[3]), tonumber(ARGV[4])
local cost = tonumber(ARGV[5] or '1') or 1

if not limit or limit < 1 or not period_ms or period_ms < 1 or not burst or burst < 1
    or not now_ms or cost < 1 then
  return redis.error_reply('rate_limit: bad arguments')
end

-- Microseconds, whole numbers: exact in a double up to 2^53 (year 2255).
local now = now_ms * 1000
local interval = math.ceil(period_ms * 1000 / limit)
local tolerance = interval * burst

local tat = tonumber(redis.call('GET', key) or '0') or 0
if tat < now then
  tat = now
end
local new_tat = tat + interval * cost
local allow_at = new_tat - tolerance

local function ms(us)
  return math.ceil(us / 1000)
end

if now < allow_at then
  return cjson.encode({ r = 'ok', allowed = false, remaining = 0,
    retry_after_ms = ms(allow_at - now), reset_ms = ms(tat - now) })
end

redis.call('SET', key, string.format('%.0f', new_tat), 'PX', math.max(1, ms(new_tat - now)))
return cjson.encode({ r = 'ok', allowed = true, remaining = math.floor((now - allow_at) / interval),
  retry_after_ms = 0, reset_ms = ms(new_tat - now) })
