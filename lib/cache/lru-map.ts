interface Node<V> {
  readonly key: string;
  value: V;
  deadline: number;
  /** Towards the least recently used end. */
  older: Node<V> | null;
  /** Towards the most recently used end. */
  newer: Node<V> | null;
}

/**
 * A string-keyed map bounded by entry count, dropping the least recently used entry
 * when full, with a deadline per entry checked on read. Every operation is O(1).
 *
 * Recency lives in a linked list rather than in a `Map`'s insertion order: evicting
 * through `map.keys().next()` walks over the tombstones of earlier deletes, which made
 * inserts into a full map tens of times slower (bench/README.md).
 */
export class LruMap<V> {
  private readonly nodes = new Map<string, Node<V>>();
  private oldest: Node<V> | null = null;
  private newest: Node<V> | null = null;

  constructor(
    readonly capacity: number,
    /** Called with each entry dropped for room or past its deadline (not on `delete` or `clear`). */
    private readonly onDrop?: (value: V, key: string) => void,
  ) {}

  get size(): number {
    return this.nodes.size;
  }

  /** The live value, marked most recently used; an entry past its deadline is dropped. */
  get(key: string, now: number): V | undefined {
    const node = this.nodes.get(key);
    if (node === undefined) return undefined;
    if (node.deadline <= now) {
      this.remove(node);
      this.onDrop?.(node.value, key);
      return undefined;
    }
    if (node !== this.newest) {
      this.unlink(node);
      this.append(node);
    }
    return node.value;
  }

  /** Stores the value as most recently used, dropping the least recently used entry when full. */
  set(key: string, value: V, deadline: number): void {
    const existing = this.nodes.get(key);
    if (existing !== undefined) {
      existing.value = value;
      existing.deadline = deadline;
      if (existing !== this.newest) {
        this.unlink(existing);
        this.append(existing);
      }
      return;
    }
    const node: Node<V> = { key, value, deadline, older: null, newer: null };
    this.nodes.set(key, node);
    this.append(node);
    if (this.nodes.size > this.capacity && this.oldest !== null) {
      const evicted = this.oldest;
      this.remove(evicted);
      this.onDrop?.(evicted.value, evicted.key);
    }
  }

  /** Removes the entry; returns its value, if it was held. */
  delete(key: string): V | undefined {
    const node = this.nodes.get(key);
    if (node === undefined) return undefined;
    this.remove(node);
    return node.value;
  }

  clear(): void {
    this.nodes.clear();
    this.oldest = this.newest = null;
  }

  private remove(node: Node<V>): void {
    this.nodes.delete(node.key);
    this.unlink(node);
  }

  private unlink(node: Node<V>): void {
    if (node.older) node.older.newer = node.newer;
    else this.oldest = node.newer;
    if (node.newer) node.newer.older = node.older;
    else this.newest = node.older;
    node.older = node.newer = null;
  }

  private append(node: Node<V>): void {
    node.older = this.newest;
    if (this.newest) this.newest.newer = node;
    else this.oldest = node;
    this.newest = node;
  }
}
