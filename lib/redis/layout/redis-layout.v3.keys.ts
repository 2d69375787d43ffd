/**
 * The keys of layout 3 under `base` (`<namespace>v3:`, which holds no brace). Each key
 * carries a hash tag, so Redis Cluster places it by what it is about: a record by its
 * key hash, an id pointer by its id, an owner's set (and its pending marks) by the
 * owner. Keys that one script reaches together share a tag; nothing else does. A tag
 * always starts with a letter and a colon, so an empty id or owner still gives a
 * non-empty tag (Redis would hash an empty `{}` with the whole key).
 */
export class RedisLayoutV3Keys {
  constructor(readonly base: string) {}

  /** STRING, the stored record: what verification GETs. */
  record(keyHash: string): string {
    return `${this.base}{h:${keyHash}}`;
  }

  /** STRING, in the record's slot: the hash a replaceHash is moving the record to (see redis-layout.v3.pointer). */
  moving(keyHash: string): string {
    return `${this.base}{h:${keyHash}}:to`;
  }

  /** STRING, the id pointer (see `RedisPointer`). */
  pointer(id: string): string {
    return `${this.base}{i:${id}}`;
  }

  /** ZSET of the owner's entries (`ownerEntry`), all scores 0. */
  owner(ownerId: string): string {
    return `${this.base}{o:${ownerId}}`;
  }

  /** ZSET of every record's owner entry: the listing across owners. */
  all(): string {
    return `${this.base}{all}`;
  }

  /** SET of the ids an issuer key issued. */
  issuer(issuerId: string): string {
    return `${this.base}{s:${issuerId}}`;
  }

  /** HASH beside an index (same slot): member -> when a write added it, until its record committed. */
  marks(indexKey: string): string {
    return `${indexKey}:p`;
  }

  /** ZSET of ids by `expiresAt` (records Redis does not expire itself), for purge. */
  expiring(): string {
    return `${this.base}{expiring}`;
  }

  /** ZSET of ids by `revokedAt`, for purge. */
  revoked(): string {
    return `${this.base}{revoked}`;
  }
}

/** Whether `namespace` can carry layout 3, whose keys place their own hash tags. */
export function assertLayoutV3Namespace(namespace: string): void {
  if (/[{}]/.test(namespace)) {
    throw new Error(
      `RedisBackend: with layout 3 the option "namespace" must not contain "{" or "}" (got "${namespace}"): every key of layout 3 carries its own hash tag. Use a namespace without braces, e.g. "api-auth:".`,
    );
  }
}
