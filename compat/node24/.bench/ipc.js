/**
 * The next message of `type` from a bench server child, or a rejection if the child
 * exits first (a server that crashed must not leave the runner waiting for ever).
 */
export function waitForMessage(child, type) {
    return new Promise((resolve, reject) => {
        const onMessage = (message) => {
            if (message?.type !== type)
                return;
            child.off('exit', onExit);
            child.off('message', onMessage);
            resolve(message);
        };
        const onExit = (code, signal) => reject(new Error(`bench server exited (code ${code}, signal ${signal})`));
        child.on('message', onMessage);
        child.once('exit', onExit);
    });
}
