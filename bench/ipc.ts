import type { ChildProcess } from 'node:child_process';

/**
 * The next message of `type` from a bench server child, or a rejection if the child
 * exits first (a server that crashed must not leave the runner waiting for ever).
 */
export function waitForMessage<T>(child: ChildProcess, type: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: { type?: string } | null) => {
      if (message?.type !== type) return;
      child.off('exit', onExit);
      child.off('message', onMessage);
      resolve(message as T);
    };
    const onExit = (code: number | null, signal: string | null) =>
      reject(new Error(`bench server exited (code ${code}, signal ${signal})`));
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}
