import { LUA_RECORD } from './redis-record.lua.js';
import { LUA_LIFECYCLE_INDEX } from './redis-lifecycle.index.js';
import { RedisScript } from './redis.scripts.js';

/**
 * KEYS: the expiring index, the revoked index. ARGV: key base, expired-before ms or '',
 * revoked-before ms or '', limit. Deletes up to `limit` records (record, id index, owner
 * and issuer entries, both index entries) whose expiry or revocation is before the
 * bound (and its entry in the index across owners), and resolves to `{ id, hash, ... }`
 * of those it deleted. Index
 * entries whose record is already gone (expired by Redis with `expireRecords`) are
 * dropped on the way without counting; at most `8 * limit` entries are examined, so one
 * call stays bounded.
 */
export const PURGE = new RedisScript(`${LUA_RECORD}${LUA_LIFECYCLE_INDEX}
local base, limit = ARGV[1], tonumber(ARGV[4])
local out, deleted, examined = {}, 0, 0
local function purgeFrom(index, before)
  if before == '' then return end
  while deleted < limit and examined < 8 * limit do
    local want = limit - deleted
    local ids = redis.call('ZRANGEBYSCORE', index, '-inf', '(' .. before, 'LIMIT', 0, want)
    if #ids == 0 then return end
    for _, id in ipairs(ids) do
      examined = examined + 1
      local idKey = base .. 'id:' .. id
      local h = redis.call('GET', idKey)
      local raw = h and redis.call('GET', base .. 'hash:' .. h)
      local rec = raw and readRecord(raw)
      if rec and rec[P.id] == id then
        redis.call('DEL', idKey, base .. 'hash:' .. h)
        local entry = rec[P.ownerEntry]
        if present(rec[P.ownerId]) and present(entry) then redis.call('ZREM', base .. 'owner:' .. rec[P.ownerId], entry) end
        if present(entry) then redis.call('ZREM', base .. 'all', entry) end
        if present(rec[P.issuedById]) then redis.call('SREM', base .. 'issuer:' .. rec[P.issuedById], id) end
        out[#out + 1] = id
        out[#out + 1] = h
        deleted = deleted + 1
      elseif h and not raw then
        redis.call('DEL', idKey)
      end
      dropLifecycle(base, id)
    end
    if #ids < want then return end
  end
end
purgeFrom(KEYS[1], ARGV[2])
purgeFrom(KEYS[2], ARGV[3])
return out
`);

/**
 * KEYS: id index, the record under the old hash, the record under the new hash. ARGV:
 * old hash, new hash, id. Moves the record to the new hash only if the id still points
 * at the old one: 1 when it moved, 0 when not, 'keyHash' when the new hash is taken.
 * The record keeps its expiry (PTTL), version and every other field.
 */
export const REPLACE_HASH = new RedisScript(`${LUA_RECORD}
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local raw = redis.call('GET', KEYS[2])
if not raw then return 0 end
local rec, encoding = readRecord(raw)
if rec[P.id] ~= ARGV[3] then return 0 end
if redis.call('EXISTS', KEYS[3]) == 1 then return 'keyHash' end
rec[P.keyHash] = ARGV[2]
local ttl = redis.call('PTTL', KEYS[2])
-- In the encoding it had: a move is not a write of this release's choosing.
redis.call('SET', KEYS[3], writeRecord(rec, encoding))
if ttl > 0 then redis.call('PEXPIRE', KEYS[3], ttl) end
redis.call('DEL', KEYS[2])
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return 1
`);

/**
 * KEYS: id index entries (one page of a SCAN). ARGV: key base. Files each record they
 * point at in the purge index, as the write scripts would have; resolves to how many
 * records it read. For records stored before the index existed.
 */
export const INDEX_RECORDS = new RedisScript(`${LUA_RECORD}${LUA_LIFECYCLE_INDEX}
local base, n = ARGV[1], 0
for _, idKey in ipairs(KEYS) do
  local h = redis.call('GET', idKey)
  local recordKey = h and base .. 'hash:' .. h
  local raw = recordKey and redis.call('GET', recordKey)
  if raw then
    syncLifecycle(base, readRecord(raw), recordKey)
    n = n + 1
  end
end
return n
`);
