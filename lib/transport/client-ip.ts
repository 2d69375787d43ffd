/**
 * The client address of a call, or `undefined` when it is unknown (a key with an
 * allowlist is then refused).
 *
 * - HTTP: `request.ip`, as the framework computed it. Express derives it from the
 *   connection, or from `X-Forwarded-For` only as far as `app.set('trust proxy', ...)`
 *   allows; Fastify does the same with its `trustProxy` option. Reading the header
 *   here instead would let any client choose its address.
 * - WebSockets: the remote address of the connection. For a `ws` client, its socket
 *   (`client._socket`), else the upgrade request a gateway kept on it
 *   (`client.request` or `client.upgradeReq`); for socket.io, `client.handshake.address`.
 *   No header is ever read: the upgrade request never passes through Express's or
 *   Fastify's request, so their trust-proxy setting does not reach it. An app that
 *   terminates WebSockets behind a proxy overrides `ApiKeyGuard.getClientIp`.
 */
export function clientIp(request: Record<string, unknown>): string | undefined {
  const carrier = request as {
    ip?: unknown;
    socket?: { remoteAddress?: unknown };
    _socket?: { remoteAddress?: unknown };
    request?: { socket?: { remoteAddress?: unknown } };
    upgradeReq?: { socket?: { remoteAddress?: unknown } };
    handshake?: { address?: unknown };
  };
  const ip =
    carrier.ip ??
    carrier.socket?.remoteAddress ??
    // `_socket` is private to `ws`; the upgrade request's socket is the same connection.
    carrier._socket?.remoteAddress ??
    carrier.request?.socket?.remoteAddress ??
    carrier.upgradeReq?.socket?.remoteAddress ??
    carrier.handshake?.address;
  return typeof ip === 'string' && ip.length > 0 ? ip : undefined;
}
