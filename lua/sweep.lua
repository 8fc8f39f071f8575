--[[
sweep: release up to `limit` expired open parts of one event, giving their seats back.
The worker calls it in a loop until it releases fewer than `limit`, so an event with
100,000 expired carts is released in short, bounded steps that never block Redis for long.
Parts in checkout are never swept (they are not in `exp`; the worker's recovery job
resolves them against PostgreSQL).

KEYS[1] inv    hash: event inventory
KEYS[2] carts  hash: cart id -> part (JSON)
KEYS[3] exp    sorted set: cart id -> expiry (ms)

ARGV[1] now_ms
ARGV[2] limit

Reply: JSON {r = "ok", released, due (expired parts still waiting after this call),
  parts (parts of the event left, open or in checkout: 0 lets the worker try
  retire_event.lua)}
]]
--!include parts.lua

local inv, carts, exp = KEYS[1], KEYS[2], KEYS[3]
local now, limit = tonumber(ARGV[1]), tonumber(ARGV[2])

local released = sweep_expired(inv, carts, exp, now, limit)
local due = redis.call('ZCOUNT', exp, '-inf', now)
return cjson.encode({ r = 'ok', released = released, due = due, parts = redis.call('HLEN', carts) })
