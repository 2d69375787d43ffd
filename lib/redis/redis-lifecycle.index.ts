// The purge index: `<base>expiring` and `<base>revoked`, sorted sets of key ids scored by
// `expiresAt` / `revokedAt` in epoch ms. The write scripts keep them in step with the
// record, so purge finds its batch with one ZRANGEBYSCORE instead of scanning every key.

/**
 * Lua: `syncLifecycle(base, rec, recordKey)` files a record (as `readRecord` returns
 * it) under its expiry and revocation (or removes it where it has none), once its key's
 * expiry is set; `dropLifecycle(base, id)` removes it from both. Needs `LUA_RECORD`
 * (redis-record.lua) in scope.
 */
export const LUA_LIFECYCLE_INDEX = `
local function dropLifecycle(base, id)
  redis.call('ZREM', base .. 'expiring', id)
  redis.call('ZREM', base .. 'revoked', id)
end
local function syncLifecycle(base, rec, recordKey)
  local id = rec[P.id]
  -- A record Redis expires itself (expireRecords) is not filed by expiry: Redis deletes
  -- it, and an entry would outlive it. One it deleted at once (expiry past) not at all.
  local ttl = redis.call('PTTL', recordKey)
  if ttl == -2 then return dropLifecycle(base, id) end
  if present(rec[P.expiresAt]) and ttl == -1 then
    redis.call('ZADD', base .. 'expiring', string.format('%.0f', rec[P.expiresAt]), id)
  else redis.call('ZREM', base .. 'expiring', id) end
  if present(rec[P.revokedAt]) then redis.call('ZADD', base .. 'revoked', string.format('%.0f', rec[P.revokedAt]), id)
  else redis.call('ZREM', base .. 'revoked', id) end
end
`;
