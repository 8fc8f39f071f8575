--[[
checkout_unlock: release a cart's checkout lock, only if this checkout still holds it
(the lock may have timed out and been taken by another checkout of the same cart).

KEYS[1] lock    string: the cart's checkout lock, holding its owner's token

ARGV[1] token   the token this checkout set with SET NX PX

Reply: JSON {r = "ok"} when released, {r = "not-held"} otherwise
]]

if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return cjson.encode({ r = 'ok' })
end
return cjson.encode({ r = 'not-held' })
