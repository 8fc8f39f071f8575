--[[
tier_load: install a tier read from PostgreSQL into the event's inventory hash, by the
version rule: the definition fields only if `version` is newer than `<tier>:v`, and
(sold, sold_version) only if `sold_version` is newer than `<tier>:sold_v` (sold.lua). So a
late or reordered loader can never roll a tier back, and never lower `sold` below the truth.
`<tier>:held` is created at 0 only when the tier is new to Redis (then no part holds it).
This is the only script that creates a tier's fields.

KEYS[1] inv        hash: event inventory

ARGV[1]  tier_id
ARGV[2]  version         the row's definition version
ARGV[3]  total           quantity_total
ARGV[4]  max_per_order
ARGV[5]  price           minor units
ARGV[6]  currency
ARGV[7]  name
ARGV[8]  sales_start_ms  0 = open from the start
ARGV[9]  sales_end_ms    0 = no end
ARGV[10] active          "1" or "0"
ARGV[11] sold            quantity_sold
ARGV[12] sold_version
ARGV[13] now_ms          noted as the event's last load (`_loaded`): retire_event.lua
                         keeps an event loaded moments ago

Reply: JSON {r = "ok", total, sold, held, v, sold_v} as Redis has them afterwards
]]

--!include sold.lua

local LAYOUT_NOTE = 'fields are <tier>:<name>; this value is long so that the hash is a hash table'

local inv = KEYS[1]
local tier = ARGV[1]
local version, sold_version = tonumber(ARGV[2]), tonumber(ARGV[12])

local have_v = tonumber(redis.call('HGET', inv, tier .. ':v') or '-1')
if version > have_v then
  redis.call('HSET', inv,
    tier .. ':v', version,
    tier .. ':total', ARGV[3],
    tier .. ':max', ARGV[4],
    tier .. ':price', ARGV[5],
    tier .. ':cur', ARGV[6],
    tier .. ':name', ARGV[7],
    tier .. ':start', ARGV[8],
    tier .. ':end', ARGV[9],
    tier .. ':active', ARGV[10])
end

install_sold_pair(inv, tier, tonumber(ARGV[11]), sold_version, false)
redis.call('HSETNX', inv, tier .. ':held', 0)
-- A value longer than hash-max-listpack-value (64 bytes by default) makes Redis keep the
-- hash as a hash table: as a listpack (below 128 fields) every field look-up of the hot
-- path scans it from the start, about a microsecond per change per tier (performance.md).
redis.call('HSETNX', inv, '_layout', LAYOUT_NOTE)
if ARGV[13] then
  redis.call('HSET', inv, '_loaded', ARGV[13])
end

local f = redis.call('HMGET', inv, tier .. ':total', tier .. ':sold', tier .. ':held',
  tier .. ':v', tier .. ':sold_v')
return cjson.encode({ r = 'ok', total = tonumber(f[1]), sold = tonumber(f[2]),
  held = tonumber(f[3]), v = tonumber(f[4]), sold_v = tonumber(f[5]) })
