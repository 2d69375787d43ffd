import type { ApiKeyCursor } from './backend.interface.js';

type Positioned = { createdAt: Date; id: string };

/** Orders records as `listByOwner` must: by `createdAt`, then `id`. */
export function compareByCursor(a: Positioned, b: Positioned): number {
  const dt = a.createdAt.getTime() - b.createdAt.getTime();
  if (dt !== 0) return dt;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Whether `record` comes strictly after `cursor` (always true without a cursor). */
export function isAfterCursor(record: Positioned, cursor: ApiKeyCursor | undefined): boolean {
  return cursor === undefined || compareByCursor(record, cursor) > 0;
}

/** Encodes a cursor as an opaque URL-safe string for HTTP clients. */
export function encodeCursor(cursor: ApiKeyCursor): string {
  return Buffer.from(`${cursor.createdAt.getTime()}:${cursor.id}`, 'utf8').toString('base64url');
}

/** Decodes {@link encodeCursor}'s output; `null` when the string is not a cursor. */
export function decodeCursor(value: string): ApiKeyCursor | null {
  if (value.length > 200) return null;
  const decoded = Buffer.from(value, 'base64url').toString('utf8');
  const match = /^(\d{1,15}):([A-Za-z0-9-]{1,64})$/.exec(decoded);
  if (!match) return null;
  return { createdAt: new Date(Number(match[1])), id: match[2]! };
}
