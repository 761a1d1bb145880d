-- The opening draw: give the pre-queue its places in the order the caller computed from the seed.
-- KEYS as in join.lua, and KEYS[9] drawn (list): the visitors in the order placed, for publication.
-- ARGV[1] seed (hex)   ARGV[2..] pre-queue visitors in drawn order
-- Returns the number of visitors placed, or -1 if the draw was already done (by another controller).
if redis.call('HGET', KEYS[5], 'drawn') == '1' then return -1 end
local placed = 0
local function place(visitor)
  if redis.call('SREM', KEYS[4], visitor) == 1 then
    local n = redis.call('INCR', KEYS[2])
    redis.call('HSET', KEYS[3], visitor, n)
    redis.call('ZADD', KEYS[1], n, visitor)
    redis.call('RPUSH', KEYS[9], visitor)
    placed = placed + 1
  end
end
for i = 2, #ARGV do place(ARGV[i]) end
local sorted = placed
-- Anyone who joined between the caller's read and now goes right after the drawn visitors.
for _, visitor in ipairs(redis.call('SMEMBERS', KEYS[4])) do place(visitor) end
redis.call('HSET', KEYS[5], 'drawn', '1', 'seed', ARGV[1], 'placed', placed, 'sorted', sorted)
return placed
