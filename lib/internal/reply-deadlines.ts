/** Rejection of a call whose reply did not come within its deadline. */
export class ReplyDeadlineExceeded extends Error {
  constructor(readonly ms: number) {
    super(`No reply within ${ms} ms.`);
  }
}

/** A started deadline, for `clear`. */
export interface Deadline {
  readonly deadline: number;
  readonly onTimeout: (error: Error) => void;
}

/** A deadline in the list of pending ones, oldest first. */
interface Node extends Deadline {
  prev: Node | null;
  next: Node | null;
  linked: boolean;
}

/**
 * Fails calls whose reply takes longer than `ms`, with one timer for all of them, armed
 * for the oldest pending call (every call has the same deadline, so they expire in start
 * order). Pending calls are a linked list. Why both: docs/internals.md#one-timer-for-every-pending-call-replydeadlines.
 */
export class ReplyDeadlines {
  private head: Node | null = null;
  private tail: Node | null = null;
  private count = 0;
  private timer: NodeJS.Timeout | undefined;

  /**
   * @param ms the deadline of every call, > 0.
   * @param timeoutError what a late call rejects with; `ReplyDeadlineExceeded` by default.
   */
  constructor(
    private readonly ms: number,
    private readonly timeoutError: (ms: number) => Error = (limit) => new ReplyDeadlineExceeded(limit),
  ) {}

  /** `promise`, or a rejection with `timeoutError(ms)` once the deadline passes. */
  track<T>(promise: Promise<T>): Promise<T> {
    return callWithin(() => promise, this, passOn);
  }

  /**
   * Starts a deadline: `onTimeout(timeoutError(ms))` runs once it passes, unless `clear`
   * came first. For a caller that settles its own promise, so the deadline adds no
   * promise of its own (on a request path, each one is a microtask hop).
   */
  start(onTimeout: (error: Error) => void): Deadline {
    const node: Node = { deadline: Date.now() + this.ms, onTimeout, prev: this.tail, next: null, linked: true };
    if (this.tail === null) this.head = node;
    else this.tail.next = node;
    this.tail = node;
    this.count++;
    this.timer ??= this.arm(this.ms);
    return node;
  }

  /**
   * Stops a deadline: the call settled in time (or no longer needs it). Idempotent.
   * Returns whether it was still running: `false` once it has passed (its `onTimeout`
   * has run) or was cleared before.
   */
  clear(deadline: Deadline): boolean {
    const node = deadline as Node;
    if (!node.linked) return false;
    node.linked = false;
    if (node.prev === null) this.head = node.next;
    else node.prev.next = node.next;
    if (node.next === null) this.tail = node.prev;
    else node.next.prev = node.prev;
    node.prev = node.next = null;
    this.count--;
    return true;
  }

  /** Calls started and not yet settled or failed. */
  get size(): number {
    return this.count;
  }

  private arm(delay: number): NodeJS.Timeout {
    // Never keeps the process alive: a call awaiting a reply does that itself, or not.
    return setTimeout(() => this.sweep(), delay).unref();
  }

  private sweep(): void {
    this.timer = undefined;
    const now = Date.now();
    while (this.head !== null) {
      const oldest = this.head;
      if (oldest.deadline > now) {
        this.timer = this.arm(oldest.deadline - now);
        return;
      }
      this.clear(oldest);
      oldest.onTimeout(this.timeoutError(this.ms));
    }
  }
}

/**
 * Runs one call and settles one promise with its reply, passed through `decode` when
 * given. A call that throws, a rejected reply, and a reply later than the deadline (when
 * `deadlines` is set) all reject with `failure(error)`; an error `decode` throws is passed
 * on as it is. One promise and no async frame: it runs on every request of a Redis store.
 */
export function callWithin<T>(
  run: () => Promise<unknown>,
  deadlines: ReplyDeadlines | undefined,
  failure: (error: unknown) => unknown,
  decode?: (reply: unknown) => T,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let reply: Promise<unknown>;
    try {
      reply = run();
    } catch (error) {
      reject(failure(error));
      return;
    }
    const deadline = deadlines?.start((error) => reject(failure(error)));
    reply.then(
      (value) => {
        if (deadline !== undefined) deadlines!.clear(deadline);
        try {
          resolve(decode === undefined ? (value as T) : decode(value));
        } catch (error) {
          reject(error);
        }
      },
      (error: unknown) => {
        if (deadline !== undefined) deadlines!.clear(deadline);
        reject(failure(error));
      },
    );
  });
}

const passOn = (error: unknown): unknown => error;

/**
 * `callWithin` for a caller that settles a promise of its own: the reply (through
 * `decode`) goes to `onValue`, and a call that throws, a rejected reply or a reply later
 * than the deadline to `onError(failure(error))`; one of them is called, once (and
 * `onError` after `onValue` only if `onValue` throws). An error `decode` or `onValue`
 * throws goes to `onError` as it is; `onError` must not throw. No promise but the one
 * `then` makes: on the verification path of a Redis store this saves two.
 */
export function callThen<T>(
  run: () => Promise<unknown>,
  deadlines: ReplyDeadlines | undefined,
  failure: (error: unknown) => unknown,
  decode: (reply: unknown) => T,
  onValue: (value: T) => void,
  onError: (error: unknown) => void,
): void {
  let reply: Promise<unknown>;
  try {
    reply = run();
  } catch (error) {
    onError(failure(error));
    return;
  }
  if (deadlines === undefined) {
    reply.then(
      (value) => settleWith(decode, value, onValue, onError),
      (error: unknown) => onError(failure(error)),
    );
    return;
  }
  const deadline = deadlines.start((error) => onError(failure(error)));
  reply.then(
    (value) => {
      // Already failed by the deadline: the late reply is dropped.
      if (deadlines.clear(deadline)) settleWith(decode, value, onValue, onError);
    },
    (error: unknown) => {
      if (deadlines.clear(deadline)) onError(failure(error));
    },
  );
}

function settleWith<T>(decode: (reply: unknown) => T, value: unknown, onValue: (value: T) => void, onError: (error: unknown) => void): void {
  try {
    onValue(decode(value));
  } catch (error) {
    onError(error);
  }
}
