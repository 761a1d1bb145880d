-- One admission tick for one event. Safe with any number of controllers running at once: the admission
-- budget is a token bucket kept in Redis, so together they never admit faster than the rate, and the
-- active set caps how many admitted buyers exist at once.
-- KEYS as in join.lua.
-- ARGV[1] now (ms)  ARGV[2] rate per second  ARGV[3] max active  ARGV[4] presence grace (ms)
-- ARGV[5] admission lifetime (ms)  ARGV[6] "1" if paused  ARGV[7] most queue entries to look at
-- Returns {admitted_through, waiting, active, left_total, admitted_total, v1, seq1, v2, seq2, ...}
local now, rate, max_active = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local grace, ttl, paused, max_scan = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6] == '1', tonumber(ARGV[7])
local queue, seen, active, state = KEYS[1], KEYS[6], KEYS[7], KEYS[8]

-- Admissions whose lifetime ended no longer count against max_active.
redis.call('ZREMRANGEBYSCORE', active, '-inf', now)
local active_n = redis.call('ZCARD', active)

local last = tonumber(redis.call('HGET', state, 'last_ms') or now)
local allowance = tonumber(redis.call('HGET', state, 'allowance') or '0')
if paused then
  allowance = 0 -- no burst on resume
else
  -- At most one second of budget accumulates, so a stalled controller does not release a flood.
  allowance = math.min(allowance + math.max(now - last, 0) * rate / 1000, math.max(rate, 1))
end
local budget = math.min(math.floor(allowance), max_active - active_n)
local out = {}
local admitted, left = 0, 0
local through = tonumber(redis.call('HGET', state, 'admitted_through') or '0')
-- Look at the head in small chunks sized to the remaining budget: a tick costs O(admitted + skipped),
-- never a scan of the whole queue.
local scanned = 0
while admitted < budget and scanned < max_scan do
  local want = math.min(budget - admitted + 64, max_scan - scanned)
  local head = redis.call('ZRANGE', queue, 0, want - 1, 'WITHSCORES')
  if #head == 0 then break end
  for i = 1, #head, 2 do
    if admitted >= budget then break end
    local visitor, seq = head[i], tonumber(head[i + 1])
    scanned = scanned + 1
    redis.call('ZREM', queue, visitor)
    through = seq
    local last_seen = tonumber(redis.call('ZSCORE', seen, visitor) or '0')
    if now - last_seen > grace then
      left = left + 1 -- gone longer than the grace period: skip, keep the queue moving
    else
      redis.call('ZADD', active, now + ttl, visitor)
      admitted = admitted + 1
      out[#out + 1] = visitor
      out[#out + 1] = seq
    end
  end
end
allowance = allowance - admitted
local left_total = redis.call('HINCRBY', state, 'left', left)
local admitted_total = redis.call('HINCRBY', state, 'admitted_total', admitted)
redis.call('HSET', state, 'last_ms', now, 'allowance', tostring(allowance), 'admitted_through', through)
local result = {through, redis.call('ZCARD', queue), active_n + admitted, left_total, admitted_total}
for _, v in ipairs(out) do result[#result + 1] = v end
return result
