import { RedisScript } from './redis.scripts.js';

// The rate limiter's Lua scripts: each runs atomically on the one slot of a key's counters.

/**
 * Shared by CONSUME and PEEK: Redis's clock in ms, and a window's counters rolled over to
 * `now` with their sliding estimate (`lib/policy/sliding-window.ts`), so both scripts
 * read a window the same way.
 */
const WINDOW_LUA = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function window_at(key, w, now)
  local idx = math.floor(now / w)
  local s = redis.call('HMGET', key, 'w', 'c', 'p')
  local sw, c, p = tonumber(s[1]), tonumber(s[2]) or 0, tonumber(s[3]) or 0
  if sw == nil or sw < idx - 1 or sw > idx then
    c, p = 0, 0
  elseif sw == idx - 1 then
    p, c = c, 0
  end
  local elapsed = now - idx * w
  return idx, c, p, elapsed, p * (w - elapsed) / w + c
end`;

/**
 * The sliding window counter of `lib/policy/sliding-window.ts`, ported line by line,
 * for every rule of a request plus its quota, as one script: Redis runs it atomically,
 * so instances sharing the Redis never count a request twice nor let two requests
 * take the last slot. Time is Redis's own (`TIME`), so the instances' clocks do not
 * matter.
 *
 * KEYS: one HASH per rate limit (`w` window index, `c` current, `p` previous count),
 * then the quota HASH (`p` period, `u` credits used) when there is a quota.
 * ARGV: rule count; limit and window (ms) of each rule; quota limit ('' for none),
 * refill interval (ms, 0 for never) and cost.
 * Replies `{ verdict, rule, remaining, resetMs, retryAfterMs, quotaRemaining, quotaResetMs }`:
 * verdict 0 allowed, 1 rate limited, 2 quota exhausted; `rule` is the 1-based index of
 * the rule reported (0 for none); -1 stands for "never" in the quota's reset.
 */
export const CONSUME = new RedisScript(`
if redis.replicate_commands then redis.replicate_commands() end
${WINDOW_LUA}
local now = now_ms()
local n = tonumber(ARGV[1])
local rules = {}
local denied, deniedRetry = 0, -1
local tightest, tightestRemaining = 0, math.huge
for i = 1, n do
  local limit = tonumber(ARGV[2 * i])
  local w = tonumber(ARGV[2 * i + 1])
  local idx, c, p, elapsed, estimate = window_at(KEYS[i], w, now)
  local fits = estimate + 1 <= limit
  local after = estimate
  if fits then after = estimate + 1 end
  local remaining = math.max(0, math.floor(limit - after))
  if not fits then
    local retry
    if c + 1 <= limit and p > 0 then
      retry = math.ceil(w - (limit - 1 - c) * w / p) - elapsed
    else
      retry = w - elapsed + math.max(0, math.ceil(w - (limit - 1) * w / c))
    end
    if retry < 1 then retry = 1 end
    if retry > deniedRetry then denied, deniedRetry = i, retry end
  end
  if remaining < tightestRemaining then tightest, tightestRemaining = i, remaining end
  rules[i] = { idx, c, p, w, remaining, w - elapsed }
end

local hasQuota = ARGV[2 * n + 2] ~= ''
local qRemaining, qReset, qFits, period, used, cost, refill = 0, -1, true, 0, 0, 0, 0
if hasQuota then
  local qlimit = tonumber(ARGV[2 * n + 2])
  refill = tonumber(ARGV[2 * n + 3])
  cost = tonumber(ARGV[2 * n + 4])
  if refill > 0 then period = math.floor(now / refill) end
  local q = redis.call('HMGET', KEYS[n + 1], 'p', 'u')
  if tonumber(q[1]) == period then used = tonumber(q[2]) or 0 end
  qFits = used + cost <= qlimit
  if qFits then qRemaining = qlimit - used - cost else qRemaining = math.max(0, qlimit - used) end
  if refill > 0 then qReset = (period + 1) * refill - now end
end

if not qFits then return { 2, 0, 0, 0, 0, qRemaining, qReset } end
if denied > 0 then
  local r = rules[denied]
  return { 1, denied, r[5], r[6], deniedRetry, qRemaining, qReset }
end
for i = 1, n do
  local r = rules[i]
  redis.call('HSET', KEYS[i], 'w', r[1], 'c', r[2] + 1, 'p', r[3])
  -- Past the next window these counts weigh on no estimate.
  redis.call('PEXPIRE', KEYS[i], (r[1] + 2) * r[4] - now)
end
if hasQuota and cost > 0 then
  redis.call('HSET', KEYS[n + 1], 'p', period, 'u', used + cost)
  if refill > 0 then redis.call('PEXPIRE', KEYS[n + 1], (period + 1) * refill - now) end
end
if tightest > 0 then
  local r = rules[tightest]
  return { 0, tightest, r[5], r[6], 0, qRemaining, qReset }
end
return { 0, 0, 0, 0, 0, qRemaining, qReset }
`);

/**
 * Reads where counters stand without writing (`peek`), with the same roll-over rules as
 * CONSUME. KEYS and ARGV as for CONSUME, without the cost. Replies, per rule, the
 * requests left and ms to the window's end, then the quota's balance and ms to its
 * refill (-1 for never; both -1 without a quota).
 */
export const PEEK = new RedisScript(`
${WINDOW_LUA}
local now = now_ms()
local n = tonumber(ARGV[1])
local out = {}
for i = 1, n do
  local limit = tonumber(ARGV[2 * i])
  local w = tonumber(ARGV[2 * i + 1])
  local _, _, _, elapsed, estimate = window_at(KEYS[i], w, now)
  out[#out + 1] = math.max(0, math.floor(limit - estimate))
  out[#out + 1] = w - elapsed
end
if ARGV[2 * n + 2] == '' then
  out[#out + 1] = -1
  out[#out + 1] = -1
  return out
end
local qlimit = tonumber(ARGV[2 * n + 2])
local refill = tonumber(ARGV[2 * n + 3])
local period = 0
if refill > 0 then period = math.floor(now / refill) end
local q = redis.call('HMGET', KEYS[n + 1], 'p', 'u')
local used = 0
if tonumber(q[1]) == period then used = tonumber(q[2]) or 0 end
out[#out + 1] = math.max(0, qlimit - used)
if refill > 0 then out[#out + 1] = (period + 1) * refill - now else out[#out + 1] = -1 end
return out
`);

/**
 * Sets (`set`) or moves (`add`) a quota's balance in one step, in the current refill
 * period (`adjustQuotaCounts` of lib/policy/sliding-window.ts, ported).
 * KEYS: the quota HASH. ARGV: limit, refill interval (ms, 0 for never), 'set' or 'add',
 * n, the largest balance. Replies { balance, ms to refill or -1 }.
 */
export const ADJUST_QUOTA = new RedisScript(`
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local qlimit = tonumber(ARGV[1])
local refill = tonumber(ARGV[2])
local n = tonumber(ARGV[4])
local period = 0
if refill > 0 then period = math.floor(now / refill) end
local q = redis.call('HMGET', KEYS[1], 'p', 'u')
local used = 0
if tonumber(q[1]) == period then used = tonumber(q[2]) or 0 end
local balance = n
if ARGV[3] == 'add' then balance = qlimit - used + n end
balance = math.min(tonumber(ARGV[5]), math.max(0, balance))
redis.call('HSET', KEYS[1], 'p', period, 'u', qlimit - balance)
if refill > 0 then
  redis.call('PEXPIRE', KEYS[1], (period + 1) * refill - now)
  return { balance, (period + 1) * refill - now }
end
return { balance, -1 }
`);
