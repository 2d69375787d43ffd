import { createHash } from 'node:crypto';
import type { RedisCommandClient } from './redis-client.types.js';
import { OWNER_ENTRY_FIELD, TIME_WIDTH } from './redis-record.codec.js';

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

// Key layout (see RedisBackend): `<base>key:<id>` HASH, `<base>hash:<keyHash>` -> id,
// `<base>owner:<ownerId>` ZSET of owner entries. Scripts get `<base>` to reach the
// keys they only learn from the record (the old owner's set, the hash index).

/** KEYS: hash index. ARGV: record key prefix. Resolves to the record's fields, or nil. */
export const GET_BY_HASH = new RedisScript(`
local id = redis.call('GET', KEYS[1])
if not id then return false end
return redis.call('HGETALL', ARGV[1] .. id)
`);

/**
 * KEYS: record, hash index, owner set. ARGV: id, owner entry, expire-at ms or '',
 * field/value pairs. Resolves to 'ok', or the name of the field that already exists,
 * in which case nothing was written.
 */
export const CREATE = new RedisScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 'id' end
if redis.call('EXISTS', KEYS[2]) == 1 then return 'keyHash' end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('SET', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], 0, ARGV[2])
if ARGV[3] ~= '' then
  redis.call('PEXPIREAT', KEYS[1], ARGV[3])
  redis.call('PEXPIREAT', KEYS[2], ARGV[3])
end
return 'ok'
`);

/**
 * KEYS: record. ARGV: key base, '1' when records expire, expire-at ms or '', then the
 * mutable field/value pairs (a null field is absent). Resolves to the stored fields,
 * or nil when no record has that id.
 */
export const UPDATE = new RedisScript(`
local cur = redis.call('HMGET', KEYS[1], 'ownerId', 'revokedAt', 'lastUsedAt', '${OWNER_ENTRY_FIELD}', 'keyHash')
if not cur[1] then return false end
local nextf = {}
for i = 4, #ARGV, 2 do nextf[ARGV[i]] = ARGV[i + 1] end
-- Revocation is sticky: a writer holding a stale copy can neither clear nor move it.
if cur[2] then nextf['revokedAt'] = cur[2] end
-- lastUsedAt never moves backwards.
if cur[3] and (not nextf['lastUsedAt'] or tonumber(nextf['lastUsedAt']) < tonumber(cur[3])) then
  nextf['lastUsedAt'] = cur[3]
end
for _, f in ipairs({'expiresAt', 'revokedAt', 'lastUsedAt', 'rotatedFromId', 'environment', 'policy'}) do
  if not nextf[f] then redis.call('HDEL', KEYS[1], f) end
end
local args = {}
for f, v in pairs(nextf) do
  args[#args + 1] = f
  args[#args + 1] = v
end
redis.call('HSET', KEYS[1], unpack(args))
if cur[4] and nextf['ownerId'] ~= cur[1] then
  redis.call('ZREM', ARGV[1] .. 'owner:' .. cur[1], cur[4])
  redis.call('ZADD', ARGV[1] .. 'owner:' .. nextf['ownerId'], 0, cur[4])
end
if ARGV[2] == '1' and cur[5] then
  local hashKey = ARGV[1] .. 'hash:' .. cur[5]
  if ARGV[3] ~= '' then
    redis.call('PEXPIREAT', KEYS[1], ARGV[3])
    redis.call('PEXPIREAT', hashKey, ARGV[3])
  else
    redis.call('PERSIST', KEYS[1])
    redis.call('PERSIST', hashKey)
  end
end
return redis.call('HGETALL', KEYS[1])
`);

/**
 * KEYS: record. ARGV: key base, id. Removes the record, its hash index entry (only if
 * it still names this id) and its owner entry. Resolves to 1, or 0 when there was none.
 */
export const DELETE = new RedisScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local cur = redis.call('HMGET', KEYS[1], 'keyHash', 'ownerId', '${OWNER_ENTRY_FIELD}')
redis.call('DEL', KEYS[1])
if cur[1] then
  local hashKey = ARGV[1] .. 'hash:' .. cur[1]
  if redis.call('GET', hashKey) == ARGV[2] then redis.call('DEL', hashKey) end
end
if cur[2] and cur[3] then redis.call('ZREM', ARGV[1] .. 'owner:' .. cur[2], cur[3]) end
return 1
`);

/**
 * KEYS: record. ARGV: used-at ms, stale-before ms. Writes lastUsedAt alone, and only
 * when it is missing or older than stale-before; never creates a deleted record again.
 * Resolves to 1 when it wrote.
 */
export const RECORD_USAGE = new RedisScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local last = redis.call('HGET', KEYS[1], 'lastUsedAt')
if last and tonumber(last) >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'lastUsedAt', ARGV[1])
return 1
`);

/**
 * KEYS: owner set. ARGV: record key prefix, exclusive lower bound ('-' or '(<entry>'),
 * page size, owner id. Resolves to `{ entries, records }`: the entries examined, in
 * order, and the fields of those whose record still exists under this owner. An entry
 * whose record is gone (expired with `expireRecords`) is removed on the way.
 */
export const LIST_PAGE = new RedisScript(`
local entries = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[2], '+', 'LIMIT', 0, tonumber(ARGV[3]))
local records = {}
for _, entry in ipairs(entries) do
  local key = ARGV[1] .. string.sub(entry, ${TIME_WIDTH + 2})
  local check = redis.call('HMGET', key, 'ownerId', '${OWNER_ENTRY_FIELD}')
  if check[1] == ARGV[4] and check[2] == entry then
    records[#records + 1] = redis.call('HGETALL', key)
  else
    redis.call('ZREM', KEYS[1], entry)
  end
end
return { entries, records }
`);
