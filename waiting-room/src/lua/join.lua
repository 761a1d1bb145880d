-- Join (or rejoin) one event's waiting room, atomically.
-- KEYS[1] queue (zset)   KEYS[2] seq (string)    KEYS[3] visitors (hash)  KEYS[4] prequeue (set)
-- KEYS[5] draw (hash)    KEYS[6] seen (zset)     KEYS[7] active (zset)    KEYS[8] state (hash)
-- ARGV[1] visitor id     ARGV[2] now (ms)
-- Returns {"waiting", seq} | {"admitted", seq} | {"pre_queue", 0}
local visitor, now = ARGV[1], tonumber(ARGV[2])
redis.call('ZADD', KEYS[6], now, visitor)
local seq = redis.call('HGET', KEYS[3], visitor)
if seq then
  -- Same visitor again (another tab, a reload): keep the place while it is still waiting or admitted.
  if redis.call('ZSCORE', KEYS[1], visitor) then return {'waiting', tonumber(seq)} end
  local until_ms = redis.call('ZSCORE', KEYS[7], visitor)
  if until_ms and tonumber(until_ms) > now then return {'admitted', tonumber(seq)} end
  -- It had its turn, or was skipped while away: a new place at the back.
end
if redis.call('SISMEMBER', KEYS[4], visitor) == 1 then return {'pre_queue', 0} end
if redis.call('HGET', KEYS[5], 'drawn') ~= '1' then
  -- Until the opening draw every arrival is equal: the draw orders them at random. After it, first come
  -- first served (even if an admin later moves the opening: the draw happens once).
  redis.call('SADD', KEYS[4], visitor)
  return {'pre_queue', 0}
end
local n = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[3], visitor, n)
redis.call('ZADD', KEYS[1], n, visitor)
return {'waiting', n}
