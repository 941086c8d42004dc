// Lua run atomically by Redis: a publish either happens whole or not at all. Anyone with
// access to Redis can write any key: nothing read here is trusted, and no value read
// makes a script fail (it is replaced, and the reply says what was wrong).

/** Helpers shared by every script (Lua 5.1: numbers are doubles, `..` keeps 14 digits). */
const PRELUDE = `
local MAX = 9007199254740991
local function fmt(n) return string.format('%d', n) end
-- A version: digits or an integral number in 1..2^53-1, else nil.
local function asVersion(x)
  local n
  if type(x) == 'string' then
    if #x > 16 or not string.match(x, '^%d+$') then return nil end
    n = tonumber(x)
  elseif type(x) == 'number' then
    n = x
  else
    return nil
  end
  if n ~= n or n < 1 or n > MAX or n ~= math.floor(n) then return nil end
  return n
end
local function shown(raw)
  if #raw > 40 then return cjson.encode(string.sub(raw, 1, 40)) .. '...' end
  return cjson.encode(raw)
end
-- A key holding a version: 0 when missing; 0 and a note when it holds anything else.
local function readVersion(key, what, notes)
  local raw = redis.pcall('GET', key)
  if not raw then return 0 end
  if type(raw) ~= 'string' then
    notes[#notes + 1] = what .. ' (' .. key .. ') is not a string'
    return 0
  end
  local n = asVersion(raw)
  if n == nil then
    notes[#notes + 1] = what .. ' (' .. key .. ') held ' .. shown(raw) .. ', not a version'
    return 0
  end
  return n
end
`;

/**
 * Raises the counter to at least ARGV[1] (never lowers it).
 * KEYS: version, latest. Returns `{latest, notes...}`: the latest version (0 when there is
 * none or it holds garbage) and what was wrong in Redis.
 */
export const RAISE_FLOOR = `${PRELUDE}
local notes = {}
local latest = readVersion(KEYS[2], 'latest', notes)
local floor = math.max(asVersion(ARGV[1]) or 0, latest)
if readVersion(KEYS[1], 'the version counter', notes) < floor then redis.call('SET', KEYS[1], fmt(floor)) end
local reply = { latest }
for _, note in ipairs(notes) do reply[#reply + 1] = note end
return reply
`;

/**
 * One publish: the next version above the floor, the counter and latest, stored; the image
 * (or a pointer to the latest one for a metrics-only update); the metrics merged into the
 * latest's (values that fail assertMetrics's rules dropped); the replaced version set to
 * expire; the announcement. Garbage in the keys read is overwritten.
 * KEYS: version, latest. ARGV: namespace, floor, ttl seconds, metrics JSON, image bytes (optional).
 * Returns `{version, notes...}`: the new version and what was wrong in Redis.
 */
export const PUBLISH = `${PRELUDE}
local ns = ARGV[1]
local ttl = tonumber(ARGV[3])
local notes = {}
local latest = readVersion(KEYS[2], 'latest', notes)
local base = math.max(asVersion(ARGV[2]) or 0, latest, readVersion(KEYS[1], 'the version counter', notes))
if base >= MAX then
  return redis.error_reply('no version left above ' .. fmt(base) .. ' (2^53-1): delete ' .. KEYS[1] .. ' and ' .. KEYS[2])
end
local v = base + 1
redis.call('SET', KEYS[1], fmt(v))

-- Mirrors assertMetrics: a stack size is an integer >= 0, an exposure a finite number >= 0.
local merged = {}
local previousImageOf = nil
if latest > 0 then
  local key = ns .. ':metrics:' .. fmt(latest)
  local raw = redis.pcall('GET', key)
  local ok, stored = false, nil
  if type(raw) == 'string' then ok, stored = pcall(cjson.decode, raw) end
  if ok and type(stored) == 'table' and stored[1] == nil then
    local s, e = stored.stackSize, stored.exposureSeconds
    if type(s) == 'number' and s >= 0 and s <= MAX and s == math.floor(s) then merged.stackSize = s end
    if type(e) == 'number' and e == e and e >= 0 and e < math.huge then merged.exposureSeconds = e end
    previousImageOf = asVersion(stored.imageOf)
    if previousImageOf and previousImageOf > latest then previousImageOf = nil end
  elseif type(raw) == 'string' then
    notes[#notes + 1] = key .. ' held ' .. shown(raw) .. ', not a JSON object of metrics'
  elseif raw then
    notes[#notes + 1] = key .. ' is not a string'
  end
  -- Metrics lost: the latest version's own image, if it has one, is the one shown.
  if previousImageOf == nil and redis.call('EXISTS', ns .. ':image:' .. fmt(latest)) == 1 then previousImageOf = latest end
end
for k, value in pairs(cjson.decode(ARGV[4])) do merged[k] = value end
local imageOf = previousImageOf
if ARGV[5] ~= nil then
  redis.call('SET', ns .. ':image:' .. fmt(v), ARGV[5])
  imageOf = v
end
-- imageOf written by hand: cjson writes numbers with 14 significant digits.
local json = cjson.encode(merged)
if imageOf then
  json = string.sub(json, 1, -2) .. (json == '{}' and '' or ',') .. '"imageOf":' .. fmt(imageOf) .. '}'
end
redis.call('SET', ns .. ':metrics:' .. fmt(v), json)

redis.call('SET', KEYS[2], fmt(v))
if latest > 0 then
  redis.call('EXPIRE', ns .. ':metrics:' .. fmt(latest), ttl)
  if previousImageOf and previousImageOf ~= imageOf then
    redis.call('EXPIRE', ns .. ':image:' .. fmt(previousImageOf), ttl)
  end
end
redis.call('PUBLISH', ns .. ':announce', fmt(v))
local reply = { v }
for _, note in ipairs(notes) do reply[#reply + 1] = note end
return reply
`;

/**
 * Reads one version whole, if it is at most `latest`: its stored metrics JSON as it is,
 * and the image it shows when its `imageOf` names one that is stored.
 * KEYS: latest. ARGV: namespace, version. Returns `{'above', latest}` for a version above
 * latest (or not a version), `{'gone', latest}` when its keys expired, else
 * `{'ok', latest, metrics JSON, imageOf or nil, image bytes or nil}`.
 */
export const FETCH = `${PRELUDE}
local ns = ARGV[1]
local latest = readVersion(KEYS[1], 'latest', {})
local v = asVersion(ARGV[2])
if v == nil or v > latest then return { 'above', latest } end
local raw = redis.pcall('GET', ns .. ':metrics:' .. fmt(v))
if type(raw) ~= 'string' then return { 'gone', latest } end
local imageOf, image = false, false
local ok, stored = pcall(cjson.decode, raw)
if ok and type(stored) == 'table' then
  local n = asVersion(stored.imageOf)
  if n and n <= v then
    local bytes = redis.pcall('GET', ns .. ':image:' .. fmt(n))
    if type(bytes) == 'string' then imageOf, image = fmt(n), bytes end
  end
end
return { 'ok', latest, raw, imageOf, image }
`;
