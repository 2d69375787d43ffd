// The purge index: `<base>expiring` and `<base>revoked`, sorted sets of key ids scored by
// `expiresAt` / `revokedAt` in epoch ms. The write scripts keep them in step with the
// record, so purge finds its batch with one ZRANGEBYSCORE instead of scanning every key.

/**
 * Lua: `syncLifecycle(base, cur, recordKey)` files a decoded record under its expiry and
 * revocation (or removes it where it has none), once its key's expiry is set;
 * `dropLifecycle(base, id)` removes it from both. Needs `P` (LUA_FIELD_POSITIONS) in scope.
 */
export const LUA_LIFECYCLE_INDEX = `
local function dropLifecycle(base, id)
  redis.call('ZREM', base .. 'expiring', id)
  redis.call('ZREM', base .. 'revoked', id)
end
local function syncLifecycle(base, cur, recordKey)
  local id = cur[P.id]
  -- A record Redis expires itself (expireRecords) is not filed by expiry: Redis deletes
  -- it, and an entry would outlive it. One it deleted at once (expiry past) not at all.
  local ttl = redis.call('PTTL', recordKey)
  if ttl == -2 then return dropLifecycle(base, id) end
  if cur[P.expiresAt] and ttl == -1 then
    redis.call('ZADD', base .. 'expiring', tonumber(cur[P.expiresAt]), id)
  else redis.call('ZREM', base .. 'expiring', id) end
  if cur[P.revokedAt] then redis.call('ZADD', base .. 'revoked', tonumber(cur[P.revokedAt]), id)
  else redis.call('ZREM', base .. 'revoked', id) end
end
`;
