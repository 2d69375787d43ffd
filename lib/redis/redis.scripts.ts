import { createHash } from 'node:crypto';
import type { RedisCommandClient } from './redis-client.types.js';
import { TIME_WIDTH } from './redis-record.codec.js';
import { LUA_RECORD } from './redis-record.lua.js';
import { LUA_LIFECYCLE_INDEX } from './redis-lifecycle.index.js';

/**
 * A Lua script run with EVALSHA, falling back to EVAL (which also caches it) when the
 * server answers NOSCRIPT, as it does after a restart, a failover or SCRIPT FLUSH.
 * Every write of `RedisBackend` is one script, so Redis runs it atomically: no other
 * command, from any client, interleaves with it.
 */
export class RedisScript {
  readonly sha: string;

  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(client: RedisCommandClient, keys: string[], args: string[]): Promise<unknown> {
    const tail = [String(keys.length), ...keys, ...args];
    try {
      return await client.sendCommand(['EVALSHA', this.sha, ...tail]);
    } catch (error) {
      if (!isNoScript(error)) throw error;
      return client.sendCommand(['EVAL', this.source, ...tail]);
    }
  }
}

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
}

// Key layout (see RedisBackend): `<base>hash:<keyHash>` STRING, the record as a JSON
// array (see redis-record.codec); `<base>id:<id>` -> key hash; `<base>owner:<ownerId>`
// ZSET of owner entries; `<base>all` ZSET of every record's owner entry (the listing
// across owners). Scripts get `<base>` to reach the keys they only learn from what
// they read, and read and write records through `LUA_RECORD` (redis-record.lua).

/**
 * Lua: `byId(idKey, base)`, the record key the id index names and the stored record
 * there (nil, nil without an index entry; the key and nil when the record is gone).
 */
const LUA_BY_ID = `
local function byId(idKey, base)
  local h = redis.call('GET', idKey)
  if not h then return nil, nil end
  local recordKey = base .. 'hash:' .. h
  return recordKey, redis.call('GET', recordKey)
end
`;

/**
 * Lua: `recordsOf(setKey, base, entries, ownerId)`, the stored records behind a page of
 * owner entries (`<createdAt>:<id>`), under `ownerId` unless it is ''. An entry whose
 * record is gone, or no longer that entry's, is removed from `setKey` on the way.
 * Shared by the owner's listing and the listing across owners.
 */
const LUA_RECORDS_OF_ENTRIES = `
local function recordsOf(setKey, base, entries, ownerId)
  local records = {}
  for _, entry in ipairs(entries) do
    local h = redis.call('GET', base .. 'id:' .. string.sub(entry, ${TIME_WIDTH + 2}))
    local raw = h and redis.call('GET', base .. 'hash:' .. h)
    local rec = raw and readRecord(raw)
    if rec and rec[P.ownerEntry] == entry and (ownerId == '' or rec[P.ownerId] == ownerId) then
      records[#records + 1] = raw
    else
      redis.call('ZREM', setKey, entry)
    end
  end
  return records
end
`;

/** KEYS: id index. ARGV: key base. Resolves to the stored record, or nil. */
export const GET_BY_ID = new RedisScript(`${LUA_BY_ID}
local _, raw = byId(KEYS[1], ARGV[1])
return raw or false
`);

/**
 * KEYS: id index, record, owner set, the index across owners, and the issuer's set when
 * the key has an issuer. ARGV: key hash, owner entry, expire-at ms or '', the stored
 * record, id, key base. Resolves to 'ok', or the name of the field that already exists,
 * in which case nothing was written. Files the record in the purge index.
 */
export const CREATE = new RedisScript(`${LUA_RECORD}${LUA_LIFECYCLE_INDEX}
if redis.call('EXISTS', KEYS[1]) == 1 then return 'id' end
if redis.call('EXISTS', KEYS[2]) == 1 then return 'keyHash' end
redis.call('SET', KEYS[2], ARGV[4])
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[3], 0, ARGV[2])
redis.call('ZADD', KEYS[4], 0, ARGV[2])
if KEYS[5] then redis.call('SADD', KEYS[5], ARGV[5]) end
if ARGV[3] ~= '' then
  redis.call('PEXPIREAT', KEYS[1], ARGV[3])
  redis.call('PEXPIREAT', KEYS[2], ARGV[3])
end
syncLifecycle(ARGV[6], readRecord(ARGV[4]), KEYS[2])
return 'ok'
`);

/**
 * KEYS: id index. ARGV: key base, the expected version or '', the expiry to set ('-'
 * keeps it, '' removes it, else expire-at ms), the `recordEncoding` option (see
 * `encodingFor`), then the changed field/value pairs (each value the JSON text
 * of its stored form; `null` clears). Applies only those fields to the record as
 * stored now, keeps the first `revokedAt`, bumps `version`. Resolves to the stored
 * record, nil when no record has that id, or `{ 'conflict', <stored version> }`
 * (nothing written).
 */
export const UPDATE = new RedisScript(`${LUA_RECORD}${LUA_BY_ID}${LUA_LIFECYCLE_INDEX}
local recordKey, raw = byId(KEYS[1], ARGV[1])
if not raw then return false end
local rec, encoding = readRecord(raw)
local changed, current = applyChanges(rec, ARGV[2], 5)
if not changed then return { 'conflict', current } end
local stored = writeRecord(rec, encodingFor(ARGV[4], encoding))
redis.call('SET', recordKey, stored, 'KEEPTTL')
if ARGV[3] == '' then
  redis.call('PERSIST', KEYS[1])
  redis.call('PERSIST', recordKey)
elseif ARGV[3] ~= '-' then
  redis.call('PEXPIREAT', KEYS[1], ARGV[3])
  redis.call('PEXPIREAT', recordKey, ARGV[3])
end
syncLifecycle(ARGV[1], rec, recordKey)
return stored
`);

/**
 * KEYS: id index. ARGV: key base, id. Removes the id index, the record (only if it is
 * this id's), its owner entry and its issuer entry. Resolves to 1, or 0 when there was none.
 */
export const DELETE = new RedisScript(`${LUA_RECORD}${LUA_BY_ID}${LUA_LIFECYCLE_INDEX}
local recordKey, raw = byId(KEYS[1], ARGV[1])
if not recordKey then return 0 end
redis.call('DEL', KEYS[1])
if raw then
  local rec = readRecord(raw)
  if rec[P.id] == ARGV[2] then
    redis.call('DEL', recordKey)
    local entry = rec[P.ownerEntry]
    if present(rec[P.ownerId]) and present(entry) then redis.call('ZREM', ARGV[1] .. 'owner:' .. rec[P.ownerId], entry) end
    if present(entry) then redis.call('ZREM', ARGV[1] .. 'all', entry) end
    if present(rec[P.issuedById]) then redis.call('SREM', ARGV[1] .. 'issuer:' .. rec[P.issuedById], ARGV[2]) end
  end
end
dropLifecycle(ARGV[1], ARGV[2])
return 1
`);

/**
 * KEYS: id index. ARGV: key base, used-at ms, stale-before ms, the encoding to write
 * (as for UPDATE). Writes lastUsedAt alone,
 * and only when it is missing or older than stale-before; never creates a deleted
 * record again, never changes its expiry. Resolves to 1 when it wrote.
 */
export const RECORD_USAGE = new RedisScript(`${LUA_RECORD}${LUA_BY_ID}
local recordKey, raw = byId(KEYS[1], ARGV[1])
if not raw then return 0 end
local rec, encoding = readRecord(raw)
local last = rec[P.lastUsedAt]
if present(last) and last >= tonumber(ARGV[3]) then return 0 end
rec[P.lastUsedAt] = tonumber(ARGV[2])
redis.call('SET', recordKey, writeRecord(rec, encodingFor(ARGV[4], encoding)), 'KEEPTTL')
return 1
`);

/**
 * KEYS: owner set. ARGV: key base, exclusive lower bound ('-' or '(<entry>'), page
 * size, owner id. Resolves to `{ entries, records }`: the entries examined, in order,
 * and the stored records of those that still exist under this owner. An entry whose
 * record is gone (expired with `expireRecords`) is removed on the way.
 */
export const LIST_PAGE = new RedisScript(`${LUA_RECORD}${LUA_RECORDS_OF_ENTRIES}
local entries = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[2], '+', 'LIMIT', 0, tonumber(ARGV[3]))
return { entries, recordsOf(KEYS[1], ARGV[1], entries, ARGV[4]) }
`);

/**
 * KEYS: issuer set. ARGV: key base, SSCAN cursor, count, issuer id. Resolves to
 * `{ next cursor, records }`: the stored records of the ids scanned that still name
 * this issuer. An id whose record is gone (deleted, or expired with `expireRecords`)
 * is removed on the way.
 */
export const LIST_ISSUED_PAGE = new RedisScript(`${LUA_RECORD}
local page = redis.call('SSCAN', KEYS[1], ARGV[2], 'COUNT', tonumber(ARGV[3]))
local records = {}
for _, id in ipairs(page[2]) do
  local h = redis.call('GET', ARGV[1] .. 'id:' .. id)
  local raw = h and redis.call('GET', ARGV[1] .. 'hash:' .. h)
  local rec = raw and readRecord(raw)
  if rec and rec[P.id] == id and rec[P.issuedById] == ARGV[4] then
    records[#records + 1] = raw
  else
    redis.call('SREM', KEYS[1], id)
  end
end
return { page[1], records }
`);

/**
 * KEYS: a set of owner entries (the index across owners, or one owner's set). ARGV: key
 * base, exclusive upper bound ('+' or '(<entry>'), page size, owner id or ''. Walks the
 * set newest first. Resolves to `{ entries, records }`: the entries examined, in order,
 * and the stored records of those that still exist (under that owner, when one is
 * named). An entry whose record is gone (deleted, or expired with `expireRecords`) is
 * removed on the way.
 */
export const LIST_ALL_PAGE = new RedisScript(`${LUA_RECORD}${LUA_RECORDS_OF_ENTRIES}
local entries = redis.call('ZREVRANGEBYLEX', KEYS[1], ARGV[2], '-', 'LIMIT', 0, tonumber(ARGV[3]))
return { entries, recordsOf(KEYS[1], ARGV[1], entries, ARGV[4]) }
`);

/**
 * KEYS: the index across owners. ARGV: SCAN cursor, count, the MATCH pattern of the
 * owner sets. Merges a batch of owner sets into the index (ZUNIONSTORE; every member
 * scores 0) and resolves to the next SCAN cursor, '0' when done. Fills the index for
 * records stored before it existed; idempotent.
 */
export const BACKFILL_ALL_INDEX = new RedisScript(`
local page = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[3], 'COUNT', tonumber(ARGV[2]))
for _, key in ipairs(page[2]) do
  if redis.call('TYPE', key).ok == 'zset' then
    redis.call('ZUNIONSTORE', KEYS[1], 2, KEYS[1], key, 'AGGREGATE', 'MIN')
  end
end
return page[1]
`);
