/**
 * The client address of a call, as the HTTP framework computed it: `request.ip`.
 * Express derives it from the connection, or from `X-Forwarded-For` only as far as
 * `app.set('trust proxy', ...)` allows; Fastify does the same with its `trustProxy`
 * option. Reading the header here instead would let any client choose its address.
 * For a WebSocket client, the address of its connection. `undefined` when unknown.
 */
export function clientIp(request: Record<string, unknown>): string | undefined {
  const carrier = request as {
    ip?: unknown;
    socket?: { remoteAddress?: unknown };
    _socket?: { remoteAddress?: unknown };
    handshake?: { address?: unknown };
  };
  const ip = carrier.ip ?? carrier.socket?.remoteAddress ?? carrier._socket?.remoteAddress ?? carrier.handshake?.address;
  return typeof ip === 'string' && ip.length > 0 ? ip : undefined;
}
