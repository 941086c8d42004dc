// Lua run atomically by Redis: a publish either happens whole or not at all.

/**
 * Raises the counter to at least ARGV[1] (never lowers it).
 * KEYS: version, latest. Returns the counter after the raise.
 */
export const RAISE_FLOOR = `
local floor = tonumber(ARGV[1])
local latest = tonumber(redis.call('GET', KEYS[2]) or '0')
if latest > floor then floor = latest end
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current < floor then
  redis.call('SET', KEYS[1], floor)
  return floor
end
return current
`;

/**
 * One publish: raise the counter to the floor, INCR, store the image (or point at the
 * latest one for a metrics-only update), merge the metrics into the latest's, move
 * `latest` forward only, let the replaced version expire, announce.
 * KEYS: version, latest. ARGV: namespace, floor, ttl seconds, metrics JSON, image bytes (optional).
 * Returns the new version.
 */
export const PUBLISH = `
local ns = ARGV[1]
local floor = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local latest = tonumber(redis.call('GET', KEYS[2]) or '0')
if latest > floor then floor = latest end
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current < floor then redis.call('SET', KEYS[1], floor) end
local v = redis.call('INCR', KEYS[1])

local merged = {}
local previousImageOf = nil
if latest > 0 then
  local raw = redis.call('GET', ns .. ':metrics:' .. latest)
  if raw then
    merged = cjson.decode(raw)
    previousImageOf = merged.imageOf
  end
end
for k, value in pairs(cjson.decode(ARGV[4])) do merged[k] = value end
if ARGV[5] ~= nil then
  redis.call('SET', ns .. ':image:' .. v, ARGV[5])
  merged.imageOf = v
end
redis.call('SET', ns .. ':metrics:' .. v, cjson.encode(merged))

if v > latest then
  redis.call('SET', KEYS[2], v)
  if latest > 0 then
    redis.call('EXPIRE', ns .. ':metrics:' .. latest, ttl)
    if previousImageOf ~= nil and previousImageOf ~= merged.imageOf then
      redis.call('EXPIRE', ns .. ':image:' .. previousImageOf, ttl)
    end
  end
end
redis.call('PUBLISH', ns .. ':announce', tostring(v))
return v
`;

/**
 * Reads one version whole: its metrics JSON and the bytes of the image it shows (nil
 * when it has none yet). KEYS: none. ARGV: namespace, version.
 */
export const FETCH = `
local ns = ARGV[1]
local raw = redis.call('GET', ns .. ':metrics:' .. ARGV[2])
if not raw then return nil end
local imageOf = cjson.decode(raw).imageOf
local image = false
if imageOf then image = redis.call('GET', ns .. ':image:' .. imageOf) end
return { raw, image }
`;
