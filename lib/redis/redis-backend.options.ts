import { assertKnownOptions, optionNames } from '../options/assert-known-options.js';

/** Options of `new RedisBackend(client, options)`. */
export interface RedisBackendOptions {
  /**
   * Prefix of every Redis key the backend writes, so it can share a database with
   * other data (and tests can use their own). The layout version follows it: keys look
   * like `api-auth:v2:id:<id>` (layout 2) or `api-auth:v3:{i:<id>}` (layout 3), so a
   * layout never misreads another's data. Layout 3 refuses `{` and `}` here; layout 2
   * on Redis Cluster needs them, as a hash tag (see `layout`). Default `"api-auth:"`.
   */
  namespace?: string;
  /**
   * Records fetched per round trip while `listByOwner` streams an owner's keys:
   * memory use is bounded by this, not by the number of keys. 1-1000, default `100`.
   */
  pageSize?: number;
  /**
   * Also let Redis delete a record (and its id index entry) once its `expiresAt`
   * has passed, plus `expiredRetentionMs`. Verification rejects expired keys either
   * way; this only reclaims memory. The expiry follows `expiresAt` exactly and
   * nothing else moves it: a usage write or any other update keeps it, so Redis never
   * keeps a key alive longer than its record says. An expired record's entry in its
   * owner's list is removed when the list is next read, so `countByOwner` may count it
   * until then. Default `false`.
   */
  expireRecords?: boolean;
  /**
   * With `expireRecords`, how long (milliseconds) an expired record is kept before
   * Redis removes it, e.g. to show "expired" in a dashboard for a while. Default `0`.
   */
  expiredRetentionMs?: number;
  /**
   * Longest wait for one Redis reply, in milliseconds,
   * after which the call fails with `BackendUnavailableError` instead of hanging while
   * Redis is stuck or unreachable. The command itself is not withdrawn: a client that
   * queues commands while disconnected may still run it later. `0` waits forever.
   * Default `5000`.
   */
  commandTimeoutMs?: number;
  /**
   * After every management write (create, update, which includes revoke, and delete),
   * wait until at least `replicas` replicas have acknowledged it (Redis `WAIT`), for at
   * most `timeoutMs` milliseconds. Redis replicates asynchronously: without this, a
   * write the primary acknowledged is lost if the primary dies before passing it on,
   * so a revoked key could work again after a failover. When fewer replicas acknowledge
   * in time, the write rejects with `BackendUnavailableError` although the primary
   * applied it (retrying a revoke is harmless). Usage writes never wait. `timeoutMs`
   * must be below `commandTimeoutMs` (unless that is `0`). Default: no wait.
   */
  waitForReplicas?: RedisReplicaWait;
  /**
   * The record encoding new and rewritten records are stored in. `3` is the cheapest
   * to read on every verification, then `2` (docs/redis.md, "How keys are stored"), but
   * releases before each cannot read it. `1` (the default in this release) writes what
   * those releases read, and leaves every record in the encoding it has. All three are
   * always read. Set `2` or `3` once no instance of a release that cannot read it shares
   * the store: from then on, every write (a usage write included) also rewrites a record
   * of another encoding in that one.
   */
  recordEncoding?: 1 | 2 | 3;
  /**
   * The key layout (docs/redis.md, "How keys are stored"):
   * - `2`: each write is one Lua script over every key of the record (record, id index,
   *   owner set, the other indexes), atomic. On Redis Cluster its keys must share one
   *   slot: the namespace needs a hash tag, e.g. `"{api-auth}:"`, and one shard holds and
   *   serves every key (failover, no scale-out).
   * - `3`: keys spread over slots, for a cluster where one shard is not enough.
   *   Verification is still one `GET`; each single-key guarantee is still one script;
   *   what spans slots is ordered around the record write, and readers skip and repair
   *   what an interrupted write left. The namespace must not contain `{` or `}`.
   *   Existing layout-2 data is not read: copy it with `migrateFromLayout2()` first.
   *
   * Default: `3` on a cluster client with a namespace without a hash tag, otherwise `2`
   * (what existing standalone data is stored in).
   */
  layout?: 2 | 3;
  /**
   * Number of decoded records kept for verification, one per key hash. Every
   * verification still reads its record from Redis; when Redis answers exactly the
   * bytes a recent verification decoded, that decoded record (frozen, with a frozen view
   * shared by the requests) is used instead of decoding again. Any write changes the
   * bytes, so a revoke or an update is seen at once, as without it. Past the bound the
   * oldest entry goes. Costs about 1.6 kB per entry with small metadata (docs/redis.md,
   * "Decode memo"). `getByHash` is not affected. `0` decodes every time. 0-100000,
   * default `1000`.
   */
  decodeCacheSize?: number;
}

/** How many replicas must acknowledge a management write, and for how long to wait. */
export interface RedisReplicaWait {
  /** At least 1. */
  replicas: number;
  /** Milliseconds, at least 1. */
  timeoutMs: number;
}

/** Options after defaults and validation. */
export interface ResolvedRedisBackendOptions {
  namespace: string;
  pageSize: number;
  expireRecords: boolean;
  expiredRetentionMs: number;
  commandTimeoutMs: number;
  waitForReplicas: RedisReplicaWait | null;
  recordEncoding: 1 | 2 | 3;
  /** `undefined`: chosen by the client (see `RedisBackendOptions.layout`). */
  layout: 2 | 3 | undefined;
  decodeCacheSize: number;
}

/** Version of layout 2's keys and record encoding; part of every key (layout 3's keys start `<namespace>v3:`). */
export const REDIS_SCHEMA_VERSION = 'v2';

function integer(option: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new Error(`RedisBackend: option "${option}" must be an integer from ${min} to ${max} (got ${String(value)}).`);
  }
  return value;
}

const OPTION_NAMES = optionNames<RedisBackendOptions>({
  namespace: true,
  pageSize: true,
  expireRecords: true,
  expiredRetentionMs: true,
  commandTimeoutMs: true,
  waitForReplicas: true,
  recordEncoding: true,
  layout: true,
  decodeCacheSize: true,
});

/** Merges options over the defaults, naming any bad or unknown option. */
export function resolveRedisBackendOptions(options: RedisBackendOptions = {}): ResolvedRedisBackendOptions {
  assertKnownOptions(options, OPTION_NAMES, { of: 'RedisBackend' });
  const namespace = options.namespace ?? 'api-auth:';
  if (typeof namespace !== 'string' || namespace.length > 200) {
    throw new Error('RedisBackend: option "namespace" must be a string of at most 200 characters.');
  }
  if (options.expireRecords !== undefined && typeof options.expireRecords !== 'boolean') {
    throw new Error('RedisBackend: option "expireRecords" must be a boolean.');
  }
  if (options.recordEncoding !== undefined && options.recordEncoding !== 1 && options.recordEncoding !== 2 && options.recordEncoding !== 3) {
    throw new Error(`RedisBackend: option "recordEncoding" must be 1, 2 or 3 (got ${String(options.recordEncoding)}).`);
  }
  if (options.layout !== undefined && options.layout !== 2 && options.layout !== 3) {
    throw new Error(`RedisBackend: option "layout" must be 2 or 3 (got ${String(options.layout)}).`);
  }
  const commandTimeoutMs = integer('commandTimeoutMs', options.commandTimeoutMs, 5_000, 0, 2_147_483_647);
  return {
    namespace,
    pageSize: integer('pageSize', options.pageSize, 100, 1, 1000),
    expireRecords: options.expireRecords ?? false,
    expiredRetentionMs: integer('expiredRetentionMs', options.expiredRetentionMs, 0, 0, Number.MAX_SAFE_INTEGER),
    commandTimeoutMs,
    waitForReplicas: replicaWait(options.waitForReplicas, commandTimeoutMs),
    recordEncoding: options.recordEncoding ?? 1,
    layout: options.layout,
    decodeCacheSize: integer('decodeCacheSize', options.decodeCacheSize, 1000, 0, 100_000),
  };
}

function replicaWait(value: unknown, commandTimeoutMs: number): RedisReplicaWait | null {
  if (value === undefined) return null;
  assertKnownOptions(value, WAIT_NAMES, { of: 'RedisBackend', path: 'waitForReplicas.' });
  const { replicas, timeoutMs } = value as Partial<RedisReplicaWait>;
  if (replicas === undefined || timeoutMs === undefined) {
    throw new Error('RedisBackend: option "waitForReplicas" needs both "replicas" and "timeoutMs".');
  }
  const wait = {
    replicas: integer('waitForReplicas.replicas', replicas, 1, 1, 1000),
    timeoutMs: integer('waitForReplicas.timeoutMs', timeoutMs, 1, 1, 2_147_483_647),
  };
  if (commandTimeoutMs > 0 && wait.timeoutMs >= commandTimeoutMs) {
    throw new Error(
      `RedisBackend: option "waitForReplicas.timeoutMs" (${wait.timeoutMs}) must be below "commandTimeoutMs" (${commandTimeoutMs}).`,
    );
  }
  return wait;
}

const WAIT_NAMES = optionNames<RedisReplicaWait>({ replicas: true, timeoutMs: true });
