/** The names of the keys of `RedisBackend`'s layout under `base` (namespace and layout version). */
export class RedisBackendKeys {
  constructor(private readonly base: string) {}

  record(keyHash: string): string {
    return `${this.base}hash:${keyHash}`;
  }

  id(id: string): string {
    return `${this.base}id:${id}`;
  }

  owner(ownerId: string): string {
    return `${this.base}owner:${ownerId}`;
  }

  all(): string {
    return `${this.base}all`;
  }

  /** Set once the index across owners holds every record stored before it existed. */
  allIndexed(): string {
    return `${this.base}all:indexed`;
  }

  issuer(issuerId: string): string {
    return `${this.base}issuer:${issuerId}`;
  }
}
