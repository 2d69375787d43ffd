/** The IPC messages between the soak driver (bench/soak.ts) and an instance (bench/soak-server.ts). */

/** Key prefix of the soak deployment. */
export const SOAK_PREFIX = 'soak_';

export type SoakRequest =
  | { type: 'issue'; owner: number; expiresInMs?: number }
  | { type: 'rotate'; id: string; graceMs: number }
  | { type: 'revoke'; id: string }
  | { type: 'memory' }
  | { type: 'stop' };

export type SoakReply =
  | { type: 'issued'; key: string; id: string; expiresAt: number | null }
  | { type: 'rotated'; key: string; id: string; graceEnd: number }
  | { type: 'revoked' }
  | { type: 'memory'; rss: number; heapUsed: number; heapTotal: number; external: number; arrayBuffers: number; collected: boolean }
  | { type: 'stopped' }
  | { type: 'error'; message: string };
