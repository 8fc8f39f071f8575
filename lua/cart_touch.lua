--[[
cart_touch: write the cart-wide facts a cart change needs, renew the meta's lifetime, and
answer all of it, in one call on the cart's own slot. Sent just before reserve.lua (in the
same pipeline on a standalone server), so the meta names the event before the part exists:
its list of events is always a superset of the cart's parts.

KEYS[1] meta   hash: the cart's meta (ev:<event> per event, cur, promo, owner, ...)

ARGV[1]    ttl_ms      the meta's lifetime from now
ARGV[2]    currency    kept only if the meta names none yet (HSETNX); "" to leave it
ARGV[2+i]  field, value pairs written as given (HSET), for i = 1, 3, 5, ...

Reply: the meta as HGETALL answers it (field, value, field, value, ...)
]]

local meta = KEYS[1]
if ARGV[2] ~= '' then
  redis.call('HSETNX', meta, 'cur', ARGV[2])
end
if #ARGV > 2 then
  redis.call('HSET', meta, unpack(ARGV, 3))
end
redis.call('PEXPIRE', meta, ARGV[1])
return redis.call('HGETALL', meta)
