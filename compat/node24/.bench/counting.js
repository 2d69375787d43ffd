/**
 * Wraps a backend so every call is counted: the benchmark reports how many primary
 * lookups each scenario caused (the database work an attacker's flood would cost).
 * Each method's counting wrapper is built once, so the wrapper adds a property trap
 * and a counter to a call, not an allocation: it sits on the measured path.
 */
export function countCalls(backend) {
    const counts = {};
    const wrappers = new Map();
    const proxy = new Proxy(backend, {
        get(target, property, receiver) {
            const value = Reflect.get(target, property, receiver);
            if (typeof value !== 'function' || typeof property !== 'string')
                return value;
            let wrapper = wrappers.get(property);
            if (wrapper === undefined) {
                counts[property] = 0;
                const method = value;
                wrapper = function (...args) {
                    counts[property]++;
                    return method.apply(target, args);
                };
                wrappers.set(property, wrapper);
            }
            return wrapper;
        },
    });
    return { backend: proxy, counts };
}
