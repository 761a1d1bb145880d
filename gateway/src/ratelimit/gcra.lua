-- Generic cell rate algorithm (GCRA) for one subject, atomic in Redis so every gateway shares the limit.
-- KEYS[1] = the subject's state key: its theoretical arrival time (TAT) in milliseconds
-- ARGV[1] = emission interval in milliseconds (60000 / requests per minute)
-- ARGV[2] = burst: how many requests may arrive at once
-- Returns {allowed (1 or 0), retry_after_ms}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local capacity = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then
  tat = now
end
local new_tat = tat + interval
if new_tat - now > capacity then
  return {0, new_tat - now - capacity}
end
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now)
return {1, 0}
