/**
 * Who may send us SIP requests: the trunk's published addresses and ranges (`sip.trunk.allowedSources`,
 * IPv4 and IPv6, single addresses or CIDR) plus the trunk's own host when it is an IP address. It is
 * checked before a request is parsed into a transaction, so a stranger's packet costs one lookup and
 * gets no answer.
 */
import { BlockList, isIP } from 'node:net';
import { MonologueError } from '../errors.js';

/** Verdicts remembered: a trunk sends from a handful of addresses, and a BlockList check costs ~2.7 µs. */
const MEMO_SIZE = 1024;

export class AllowedSources {
  private readonly list = new BlockList();
  private readonly memo = new Map<string, boolean>();

  /** Throws CONFIG_INVALID naming the entry when one is neither an IP address nor a CIDR range. */
  constructor(entries: readonly string[], extra: readonly string[] = []) {
    for (const entry of entries) {
      if (!add(this.list, entry.trim())) {
        throw new MonologueError(
          'CONFIG_INVALID',
          `config key "sip.trunk.allowedSources" has ${JSON.stringify(entry)}: expected an IP address or a CIDR range such as 192.0.2.0/24 or 2001:db8::/32`,
        );
      }
    }
    for (const host of extra) add(this.list, host);
  }

  /** Whether `address` (a socket's remote address or a URI host) is allowed. Host names never are. */
  has(address: string): boolean {
    const known = this.memo.get(address);
    if (known !== undefined) return known;
    const ip = plainIp(address);
    const family = isIP(ip);
    const verdict = family !== 0 && this.list.check(ip, family === 6 ? 'ipv6' : 'ipv4');
    // A flood from spoofed addresses only churns the memo; it cannot grow it.
    if (this.memo.size >= MEMO_SIZE) this.memo.clear();
    this.memo.set(address, verdict);
    return verdict;
  }
}

/** The address as comparable IP text: without URI brackets, IPv4-mapped IPv6 as plain IPv4. */
export function plainIp(address: string): string {
  const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const lower = bare.toLowerCase();
  return lower.startsWith('::ffff:') && isIP(lower.slice(7)) === 4 ? lower.slice(7) : lower;
}

function add(list: BlockList, entry: string): boolean {
  const slash = entry.indexOf('/');
  const ip = plainIp(slash < 0 ? entry : entry.slice(0, slash));
  const family = isIP(ip);
  if (family === 0) return false;
  const type = family === 6 ? 'ipv6' : 'ipv4';
  if (slash < 0) {
    list.addAddress(ip, type);
    return true;
  }
  const prefix = entry.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > (family === 6 ? 128 : 32)) return false;
  list.addSubnet(ip, Number(prefix), type);
  return true;
}
