--[[
install_sold: install (sold, sold_version) pairs read from PostgreSQL (a checkout that
found PostgreSQL had fewer seats than Redis thought), by the rule of sold.lua: only
where the version is newer than what Redis has counted; changes counted ahead of it stay
on top. A tier missing from Redis is skipped: counters are never created from nothing
(the next load reads PostgreSQL anyway).

KEYS[1] inv   hash: event inventory

ARGV[3i-2] tier_id, ARGV[3i-1] sold, ARGV[3i] sold_version   (for i = 1..n)

Reply: JSON {r = "ok", installed (how many pairs were newer)}
]]
--!include sold.lua

local inv = KEYS[1]
local installed = 0
for i = 1, #ARGV, 3 do
  if install_sold_pair(inv, ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), false) then
    installed = installed + 1
  end
end
return cjson.encode({ r = 'ok', installed = installed })
