import { describe, expect, it } from 'vitest';
import { IpAllowlist, parseIpRule } from '../../lib/policy/ip-allowlist.js';
import { clientIp } from '../../lib/transport/client-ip.js';

describe('parseIpRule', () => {
  it('reads addresses and CIDR ranges of both families', () => {
    expect(parseIpRule('203.0.113.7')).toEqual({ address: '203.0.113.7', prefix: 32, family: 'ipv4' });
    expect(parseIpRule('10.0.0.0/8')).toEqual({ address: '10.0.0.0', prefix: 8, family: 'ipv4' });
    expect(parseIpRule('2001:db8::/32')).toEqual({ address: '2001:db8::', prefix: 32, family: 'ipv6' });
    expect(parseIpRule('::1')).toEqual({ address: '::1', prefix: 128, family: 'ipv6' });
  });

  it('refuses anything else', () => {
    for (const bad of ['', '10.0.0', '10.0.0.0/33', '::/129', '10.0.0.0/', '10.0.0.0/8/8', 'localhost', '10.0.0.0/-1', ' 10.0.0.1', 7, null]) {
      expect(parseIpRule(bad)).toBeNull();
    }
  });
});

describe('IpAllowlist', () => {
  const allowlist = new IpAllowlist();

  it('matches addresses inside the ranges, for both families', () => {
    const list = ['10.0.0.0/8', '203.0.113.7', '2001:db8::/32'];
    expect(allowlist.allows('10.200.3.4', list)).toBe(true);
    expect(allowlist.allows('203.0.113.7', list)).toBe(true);
    expect(allowlist.allows('2001:db8:1::9', list)).toBe(true);
    expect(allowlist.allows('11.0.0.1', list)).toBe(false);
    expect(allowlist.allows('203.0.113.8', list)).toBe(false);
    expect(allowlist.allows('2001:db9::1', list)).toBe(false);
  });

  it('matches IPv4-mapped IPv6 addresses (what a dual-stack socket reports) against IPv4 rules', () => {
    expect(allowlist.allows('::ffff:10.1.2.3', ['10.0.0.0/8'])).toBe(true);
    expect(allowlist.allows('::ffff:127.0.0.1', ['127.0.0.1'])).toBe(true);
    expect(allowlist.allows('::ffff:192.168.0.1', ['10.0.0.0/8'])).toBe(false);
  });

  it('remembers answers per list, never across lists', () => {
    const own = new IpAllowlist();
    const office = ['10.0.0.0/8'];
    const home = ['192.168.0.0/16'];
    for (let i = 0; i < 3; i++) {
      expect(own.allows('10.1.1.1', office)).toBe(true);
      expect(own.allows('10.1.1.1', home)).toBe(false);
      // A list with the same entries in a new array (a record read again) answers the same.
      expect(own.allows('10.1.1.1', [...home])).toBe(false);
      expect(own.allows('192.168.3.3', [...home])).toBe(true);
    }
  });

  it('never allows a missing or unparsable address', () => {
    expect(allowlist.allows(undefined, ['0.0.0.0/0'])).toBe(false);
    expect(allowlist.allows('not-an-ip', ['0.0.0.0/0', '::/0'])).toBe(false);
  });
});

describe('clientIp', () => {
  it('takes request.ip (what the framework derived under its trust-proxy setting) before the socket', () => {
    expect(clientIp({ ip: '10.1.1.1', socket: { remoteAddress: '127.0.0.1' }, headers: { 'x-forwarded-for': '6.6.6.6' } })).toBe('10.1.1.1');
    expect(clientIp({ socket: { remoteAddress: '127.0.0.1' } })).toBe('127.0.0.1');
    expect(clientIp({ _socket: { remoteAddress: '::1' } })).toBe('::1');
    expect(clientIp({ handshake: { address: '192.0.2.1' } })).toBe('192.0.2.1');
    // X-Forwarded-For alone is never believed here.
    expect(clientIp({ headers: { 'x-forwarded-for': '6.6.6.6' } })).toBeUndefined();
  });

  it('for a ws client, falls back from its socket to the upgrade request the gateway kept, and never reads its headers', () => {
    const upgrade = { socket: { remoteAddress: '192.0.2.9' }, headers: { 'x-forwarded-for': '6.6.6.6', forwarded: 'for=6.6.6.6' } };
    expect(clientIp({ _socket: { remoteAddress: '192.0.2.8' }, request: upgrade })).toBe('192.0.2.8');
    expect(clientIp({ request: upgrade })).toBe('192.0.2.9');
    expect(clientIp({ upgradeReq: upgrade })).toBe('192.0.2.9');
    // A closed socket reports no address; the headers still count for nothing.
    const closed = { socket: {}, headers: upgrade.headers };
    expect(clientIp({ _socket: {}, request: closed })).toBeUndefined();
    expect(clientIp({ _socket: { remoteAddress: '' } })).toBeUndefined();
  });
});
