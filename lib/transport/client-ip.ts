/**
 * The client address of a call, or `undefined` when it is unknown (a key with an
 * allowlist is then refused). HTTP: `request.ip`, which Express and Fastify derive from
 * `X-Forwarded-For` only as far as the app trusts its proxies. WebSockets: the
 * connection's remote address, never a header (docs/limits.md#ip-allowlists).
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
