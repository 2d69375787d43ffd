import { LUA_RECORD } from '../redis-record.lua.js';
import { RedisScript } from '../redis.scripts.js';

// Layout 3's scripts. Each reaches the keys of ONE hash tag, all declared in KEYS, so it
// runs on one slot of a cluster, atomically. What spans slots is ordered by the caller
// (redis-layout.v3.ts): see docs/redis.md, "Layout 3".

/**
 * KEYS: id pointer. ARGV: the pending pointer value, expire-at ms or ''. Claims the id
 * when nobody holds it (resolves to nil); otherwise changes nothing and resolves to
 * the value there.
 */
export const CLAIM = new RedisScript(`
local cur = redis.call('GET', KEYS[1])
if cur then return cur end
redis.call('SET', KEYS[1], ARGV[1])
if ARGV[2] ~= '' then redis.call('PEXPIREAT', KEYS[1], ARGV[2]) end
return false
`);

/**
 * KEYS: id pointer. ARGV: expected value, new value ('' deletes), expiry ('-' keeps it,
 * '' removes it, else expire-at ms). Compare-and-set: 1 when the pointer held the
 * expected value (and now holds the new one), else 0.
 */
export const POINTER_SWAP = new RedisScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) return 1 end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
if ARGV[3] == '' then redis.call('PERSIST', KEYS[1])
elseif ARGV[3] ~= '-' then redis.call('PEXPIREAT', KEYS[1], ARGV[3]) end
return 1
`);

/**
 * KEYS: an index (ZSET when ARGV[1] is 'z', SET when 's'), its pending marks. ARGV:
 * kind, member, then 'add' with the time to mark it with, 'settle' or 'remove'.
 * 'add' files the member as pending (before its record commits); 'settle' files it
 * without a mark (after the commit: also puts back an entry a reader removed because
 * its writer stalled past the grace period); 'remove' drops entry and mark.
 */
export const INDEX_ENTRY = new RedisScript(`
local kind, member, op = ARGV[1], ARGV[2], ARGV[3]
if op == 'remove' then
  if kind == 'z' then redis.call('ZREM', KEYS[1], member) else redis.call('SREM', KEYS[1], member) end
  redis.call('HDEL', KEYS[2], member)
  return 1
end
if kind == 'z' then redis.call('ZADD', KEYS[1], 0, member) else redis.call('SADD', KEYS[1], member) end
if op == 'add' then redis.call('HSET', KEYS[2], member, ARGV[4]) else redis.call('HDEL', KEYS[2], member) end
return 1
`);

/**
 * KEYS: an index, its pending marks. ARGV: kind ('z' or 's'), cutoff ms, members. The
 * repair a reader makes of entries whose record it did not find: removes each member
 * that carries no pending mark, or one older than the cutoff. A member a writer filed
 * again meanwhile carries a fresh mark and stays. Resolves to how many it removed.
 */
export const INDEX_REPAIR = new RedisScript(`
local kind, cutoff, removed = ARGV[1], tonumber(ARGV[2]), 0
for i = 3, #ARGV do
  local m = redis.call('HGET', KEYS[2], ARGV[i])
  if not m or tonumber(m) < cutoff then
    local n
    if kind == 'z' then n = redis.call('ZREM', KEYS[1], ARGV[i]) else n = redis.call('SREM', KEYS[1], ARGV[i]) end
    redis.call('HDEL', KEYS[2], ARGV[i])
    removed = removed + n
  end
end
return removed
`);

/**
 * KEYS: an owner-entry ZSET, its pending marks. ARGV: 'asc' or 'desc', the bound to
 * start from (exclusive or inclusive, ZRANGEBYLEX syntax), page size. Resolves to
 * `{ entries, marks }` (a mark, or false, per entry).
 */
export const ENTRY_PAGE = new RedisScript(`
local entries
if ARGV[1] == 'asc' then entries = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[2], '+', 'LIMIT', 0, tonumber(ARGV[3]))
else entries = redis.call('ZREVRANGEBYLEX', KEYS[1], ARGV[2], '-', 'LIMIT', 0, tonumber(ARGV[3])) end
if #entries == 0 then return { entries, {} } end
return { entries, redis.call('HMGET', KEYS[2], unpack(entries)) }
`);

/** KEYS: an issuer's SET, its pending marks. ARGV: SSCAN cursor, count. Resolves to `{ next, members, marks }`. */
export const MEMBER_PAGE = new RedisScript(`
local page = redis.call('SSCAN', KEYS[1], ARGV[1], 'COUNT', tonumber(ARGV[2]))
if #page[2] == 0 then return { page[1], {}, {} } end
return { page[1], page[2], redis.call('HMGET', KEYS[2], unpack(page[2])) }
`);

/**
 * KEYS: record, its moving marker. ARGV: the stored record, id, expire-at ms or ''.
 * The commit of a create: writes the record only where no record is. Resolves to 'ok',
 * 'same' (this very record is stored: a retried create), 'id' (a record of this id,
 * since changed) or 'keyHash' (another key's record).
 */
export const COMMIT = new RedisScript(`${LUA_RECORD}
local cur = redis.call('GET', KEYS[1])
if cur then
  if cur == ARGV[1] then return 'same' end
  local rec = readRecord(cur)
  if rec[P.id] == ARGV[2] then return 'id' end
  return 'keyHash'
end
redis.call('SET', KEYS[1], ARGV[1])
if ARGV[3] ~= '' then redis.call('PEXPIREAT', KEYS[1], ARGV[3]) end
redis.call('DEL', KEYS[2])
return 'ok'
`);

/** Lua: the record of id ARGV[1] under KEYS[1], refusing while KEYS[2] says it is moving to another hash. */
const LUA_OWN_RECORD = `
local function ownRecord()
  if redis.call('EXISTS', KEYS[2]) == 1 then return nil, nil, 'moved' end
  local raw = redis.call('GET', KEYS[1])
  if not raw then return nil, nil, nil end
  local rec, encoding = readRecord(raw)
  if rec[P.id] ~= ARGV[1] then return nil, nil, nil end
  return rec, encoding, raw
end
`;

/**
 * KEYS: record, its moving marker. ARGV: id, expected version or '', expiry ('-' keeps,
 * '' removes, else expire-at ms), encoding to write ('2', or '1' to keep the record's),
 * then field/value pairs (as layout 2's UPDATE). Sticky revokedAt, version + 1, KEEPTTL.
 * Resolves to `{ 'ok', stored, expire-time ms (-1 none) }`, `{ 'conflict', version }`,
 * `{ 'moved' }`, or nil when the record is not there.
 */
export const UPDATE_RECORD = new RedisScript(`${LUA_RECORD}${LUA_OWN_RECORD}
local rec, encoding, raw = ownRecord()
if raw == 'moved' then return { 'moved' } end
if not rec then return false end
local changed, current = applyChanges(rec, ARGV[2], 5)
if not changed then return { 'conflict', current } end
local stored = writeRecord(rec, encodingFor(ARGV[4], encoding))
redis.call('SET', KEYS[1], stored, 'KEEPTTL')
if ARGV[3] == '' then redis.call('PERSIST', KEYS[1])
elseif ARGV[3] ~= '-' then redis.call('PEXPIREAT', KEYS[1], ARGV[3]) end
return { 'ok', stored, redis.call('PEXPIRETIME', KEYS[1]) }
`);

/**
 * KEYS: record, its moving marker. ARGV: id, used-at ms, stale-before ms, encoding (as
 * for UPDATE_RECORD). Writes lastUsedAt alone, only forwards past stale-before, never
 * re-creating a deleted record. Resolves to 1 when it wrote, 0, or 'moved'.
 */
export const USAGE_RECORD = new RedisScript(`${LUA_RECORD}${LUA_OWN_RECORD}
local rec, encoding, raw = ownRecord()
if raw == 'moved' then return 'moved' end
if not rec then return 0 end
local last = rec[P.lastUsedAt]
if present(last) and last >= tonumber(ARGV[3]) then return 0 end
rec[P.lastUsedAt] = tonumber(ARGV[2])
redis.call('SET', KEYS[1], writeRecord(rec, encodingFor(ARGV[4], encoding)), 'KEEPTTL')
return 1
`);

/**
 * KEYS: record, its moving marker. ARGV: id, then optionally a field ('expiresAt' or
 * 'revokedAt') and a bound ms: delete only when that field is set and before it. The
 * commit of a delete (and of purge). Resolves to `{ 'deleted', stored }`,
 * `{ 'kept', stored }` (the condition does not hold), `{ 'moved' }`, or nil.
 */
export const DELETE_RECORD = new RedisScript(`${LUA_RECORD}${LUA_OWN_RECORD}
local rec, _, raw = ownRecord()
if raw == 'moved' then return { 'moved' } end
if not rec then return false end
if ARGV[2] then
  local v = rec[P[ARGV[2]]]
  if not present(v) or v >= tonumber(ARGV[3]) then return { 'kept', raw } end
end
redis.call('DEL', KEYS[1])
return { 'deleted', raw }
`);

/**
 * KEYS: the record under the old hash, its moving marker. ARGV: id, new hash. Freezes
 * the record for a move: from now on its writes answer 'moved' and the writer finishes
 * the move first, so the copy made from what this returns is never behind. Resolves to
 * `{ stored, expire-time ms }`, nil when the record is not there, or 'busy' when it is
 * moving to another hash.
 */
export const FREEZE = new RedisScript(`${LUA_RECORD}
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local rec = readRecord(raw)
if rec[P.id] ~= ARGV[1] then return false end
local to = redis.call('GET', KEYS[2])
if to and to ~= ARGV[2] then return 'busy' end
local at = redis.call('PEXPIRETIME', KEYS[1])
redis.call('SET', KEYS[2], ARGV[2])
if at > 0 then redis.call('PEXPIREAT', KEYS[2], at) end
return { raw, at }
`);

/**
 * KEYS: the record under the new hash. ARGV: id, the frozen record, new hash, expire-at
 * ms (or -1). Writes the record there with its keyHash changed, in the encoding it had,
 * unless this id's record is there already. Resolves to 'placed' or 'keyHash' (another
 * key's record holds the hash).
 */
export const PLACE = new RedisScript(`${LUA_RECORD}
local cur = redis.call('GET', KEYS[1])
if cur then
  if readRecord(cur)[P.id] == ARGV[1] then return 'placed' end
  return 'keyHash'
end
local rec, encoding = readRecord(ARGV[2])
rec[P.keyHash] = ARGV[3]
redis.call('SET', KEYS[1], writeRecord(rec, encoding))
if tonumber(ARGV[4]) > 0 then redis.call('PEXPIREAT', KEYS[1], ARGV[4]) end
return 'placed'
`);

/**
 * KEYS: the record under the old hash, its moving marker. ARGV: id, new hash, 'drop'
 * or 'thaw'. Ends a move there: 'drop' deletes the frozen record (the copy is placed),
 * 'thaw' only unfreezes it (the move was refused). Only the move to that hash.
 */
export const END_MOVE = new RedisScript(`${LUA_RECORD}
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[2])
if ARGV[3] == 'drop' then
  local raw = redis.call('GET', KEYS[1])
  if raw and readRecord(raw)[P.id] == ARGV[1] then redis.call('DEL', KEYS[1]) end
end
return 1
`);

/**
 * KEYS: a purge index (ZSET of ids by ms), its versions HASH. ARGV: id, the record's
 * version, its score or '' (not filed). Files the id as that version of the record says,
 * unless a later version was filed already: writes of one record in any order leave
 * the latest. 'drop' as the version removes the id whatever was filed.
 */
export const LIFECYCLE_SYNC = new RedisScript(`
if ARGV[2] == 'drop' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  return 1
end
local filed = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if filed > tonumber(ARGV[2]) then return 0 end
if ARGV[3] == '' then redis.call('ZREM', KEYS[1], ARGV[1]) else redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1]) end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
`);

/**
 * KEYS: record, its moving marker. ARGV: id, the stored record, its version, expire-at
 * ms or ''. Migration: replaces this id's record with a later version of it (written
 * to layout 2 after it was copied). Resolves to 'updated', 'unchanged' (not later),
 * 'other' (no record of this id here) or 'moved'.
 */
export const OVERWRITE = new RedisScript(`${LUA_RECORD}
if redis.call('EXISTS', KEYS[2]) == 1 then return 'moved' end
local cur = redis.call('GET', KEYS[1])
if not cur then return 'other' end
local rec = readRecord(cur)
if rec[P.id] ~= ARGV[1] then return 'other' end
if rec[P.version] >= tonumber(ARGV[3]) then return 'unchanged' end
redis.call('SET', KEYS[1], ARGV[2])
if ARGV[4] ~= '' then redis.call('PEXPIREAT', KEYS[1], ARGV[4]) end
return 'updated'
`);
