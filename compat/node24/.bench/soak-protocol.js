/** The IPC messages between the soak driver (bench/soak.ts) and an instance (bench/soak-server.ts). */
/** Key prefix of the soak deployment. */
export const SOAK_PREFIX = 'soak_';
