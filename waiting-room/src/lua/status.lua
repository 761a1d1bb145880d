-- Where one visitor stands, and mark it present.
-- KEYS as in join.lua.   ARGV[1] visitor id   ARGV[2] now (ms)
-- Returns {"waiting", seq, people_ahead} | {"admitted", seq, expires_ms} | {"pre_queue", 0, 0}
--       | {"left", seq, 0} (its turn passed or it was skipped while away) | {"unknown", 0, 0}
local visitor, now = ARGV[1], tonumber(ARGV[2])
local seq = redis.call('HGET', KEYS[3], visitor)
if redis.call('SISMEMBER', KEYS[4], visitor) == 1 then
  redis.call('ZADD', KEYS[6], now, visitor)
  return {'pre_queue', 0, 0}
end
if not seq then return {'unknown', 0, 0} end
seq = tonumber(seq)
local until_ms = redis.call('ZSCORE', KEYS[7], visitor)
if until_ms and tonumber(until_ms) > now then return {'admitted', seq, tonumber(until_ms)} end
if redis.call('ZSCORE', KEYS[1], visitor) then
  redis.call('ZADD', KEYS[6], now, visitor)
  return {'waiting', seq, redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. seq)}
end
return {'left', seq, 0}
