/**
 * The names of every option of `T`, spelled out once and checked by the compiler:
 * leaving a name out, or listing one `T` does not have, does not compile. So the list
 * that {@link assertKnownOptions} accepts can never drift from the options' type.
 *
 * ```ts
 * const NAMES = optionNames<RedisBackendOptions>({ namespace: true, pageSize: true, ... });
 * ```
 */
export function optionNames<T extends object>(names: { readonly [K in keyof T]-?: true }): readonly string[] {
  return Object.freeze(Object.keys(names));
}

/** Where the options checked by {@link assertKnownOptions} belong, for the error message. */
export interface KnownOptionsContext {
  /**
   * What the options configure, e.g. `"RedisBackend"`, giving `unknown RedisBackend
   * option "x"`. Omitted for `ApiAuthModule`'s own options.
   */
  of?: string;
  /** Prefix of nested option names, e.g. `"routes."`, so the message names the full path. */
  path?: string;
  /**
   * Names that are real options, but of another object, each with the end of a
   * sentence saying where it goes, e.g. `{ routes: 'is an option of forRootAsync() itself, ...' }`.
   */
  misplaced?: Readonly<Record<string, string>>;
}

/**
 * Refuses an option name that `known` does not hold, so that a misspelled option
 * (`prefx`, `pepperr`, `routes: { adminScop }`) stops the application at start-up
 * rather than being ignored and leaving a default the user did not choose (a
 * misspelled `pepper` would mean unpeppered hashes). The error names the option and
 * the closest known one; it never shows the option's value, which may be a secret.
 *
 * A key whose value is `undefined` is accepted whatever its name: options are often
 * built by spreading configuration (`{ pepper: env.PEPPER, ...overrides }`), and a
 * key set to `undefined` configures nothing, misspelled or not; the outcome is the
 * same as with the right name. Symbol keys and inherited properties are not options
 * and are not looked at. Anything but a plain object (`null`, an array) is refused.
 */
export function assertKnownOptions(options: unknown, known: readonly string[], context: KnownOptionsContext = {}): void {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    const { of, path } = context;
    const owner = of ? `${of} ` : '';
    const subject = path ? `${owner}option "${path.replace(/\.$/, '')}"` : `${owner}options`;
    throw new Error(`nestjs-api-auth: ${subject} must be an object.`);
  }
  for (const name of Object.keys(options)) {
    if ((options as Record<string, unknown>)[name] === undefined || known.includes(name)) continue;
    throw new Error(unknownOptionMessage(name, known, context));
  }
}

function unknownOptionMessage(name: string, known: readonly string[], { of, path = '', misplaced }: KnownOptionsContext): string {
  const owner = of ? `${of} option` : 'option';
  // The name comes from user code, not from a request, but keep a runaway one readable.
  const shown = JSON.stringify(path + (name.length > 64 ? `${name.slice(0, 64)}...` : name));
  const where = misplaced && Object.hasOwn(misplaced, name) ? misplaced[name] : undefined;
  if (where !== undefined) return `nestjs-api-auth: ${owner} ${shown} ${where}`;
  const suggestion = closestName(name, known);
  if (suggestion !== undefined) return `nestjs-api-auth: unknown ${owner} ${shown} (did you mean ${JSON.stringify(path + suggestion)}?)`;
  const list = known.length > 0 ? known.map((k) => path + k).join(', ') : 'none';
  return `nestjs-api-auth: unknown ${owner} ${shown} (known options: ${list})`;
}

/**
 * The known name closest to `name`, or `undefined` when none is close enough to be a
 * plausible typo. Compares case-insensitively (`usageIntervalMS`); "close" is an edit
 * distance of at most a third of the name (at least 1), or one name containing the
 * other (`timeout` for `timeoutMs`).
 */
export function closestName(name: string, known: readonly string[]): string | undefined {
  const wanted = name.toLowerCase();
  const limit = Math.max(1, Math.floor(wanted.length / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const lower = candidate.toLowerCase();
    const distance = editDistance(wanted, lower);
    const contains = Math.min(wanted.length, lower.length) >= 4 && (lower.includes(wanted) || wanted.includes(lower));
    if ((distance <= limit || contains) && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/**
 * Edits (insert, delete, substitute, swap two neighbours) turning `a` into `b`: the
 * optimal string alignment distance. Option names are short; two rows suffice.
 */
function editDistance(a: string, b: string): number {
  let before = new Array<number>(b.length + 1).fill(0);
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, before[j - 2]! + 1);
      current.push(d);
    }
    before = previous;
    previous = current;
  }
  return previous[b.length]!;
}
