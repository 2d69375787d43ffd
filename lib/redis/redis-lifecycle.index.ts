// The purge index: `<base>expiring` and `<base>revoked`, sorted sets of key ids scored by
// `expiresAt` / `revokedAt` in epoch ms. The write scripts keep them in step with the
// record, so purge finds its batch with one ZRANGEBYSCORE instead of scanning every key.

/**
 * Lua: `syncLifecycle(base, cur)` files a decoded record under its expiry and revocation
 * (or removes it where it has none); `dropLifecycle(base, id)` removes it from both.
 * Needs `P` (LUA_FIELD_POSITIONS) in scope.
 */
export const LUA_LIFECYCLE_INDEX = `
local function syncLifecycle(base, cur)
  local id = cur[P.id]
  if cur[P.expiresAt] then redis.call('ZADD', base .. 'expiring', tonumber(cur[P.expiresAt]), id)
  else redis.call('ZREM', base .. 'expiring', id) end
  if cur[P.revokedAt] then redis.call('ZADD', base .. 'revoked', tonumber(cur[P.revokedAt]), id)
  else redis.call('ZREM', base .. 'revoked', id) end
end
local function dropLifecycle(base, id)
  redis.call('ZREM', base .. 'expiring', id)
  redis.call('ZREM', base .. 'revoked', id)
end
`;
