--[[
count_sold: count committed changes of `quantity_sold` learnt from PostgreSQL (a cancel,
an expiry, a late payment: each bumped the tier's sold_version by one), by the chain rule
of sold.lua: each change once, whatever the order in which they arrive. A tier missing
from Redis is skipped: counters are never created from nothing.

KEYS[1] inv   hash: event inventory

ARGV[3i-2] tier_id, ARGV[3i-1] sold_version of the change, ARGV[3i] delta (seats, signed)
           (for i = 1..n)

Reply: JSON {r = "ok", counted (how many changes were new)}
]]
--!include sold.lua

return cjson.encode({ r = 'ok', counted = count_sold_changes(KEYS[1], ARGV, 1) })
