// A tiny authoritative DNS server for tests: answers A, AAAA and SRV questions from a zone the test
// edits, over UDP and (for answers past 512 bytes, which it truncates on UDP as RFC 1035 says) TCP on
// the same port, so a real node:dns Resolver pointed at it exercises the real wire path. It counts
// the questions it gets. Not a general server: one question per query, no compression beyond the
// question name, no EDNS in answers.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, isIPv6, type Server, type Socket } from 'node:net';

export interface AddressRecord {
  readonly address: string;
  readonly ttl: number;
}
export interface SrvRecord {
  readonly priority: number;
  readonly weight: number;
  readonly port: number;
  readonly target: string;
  readonly ttl: number;
}
export interface NameRecords {
  readonly A?: readonly AddressRecord[];
  readonly AAAA?: readonly AddressRecord[];
  readonly SRV?: readonly SrvRecord[];
}

const TYPES = { A: 1, AAAA: 28, SRV: 33 } as const;
type RecordType = keyof typeof TYPES;
const RCODE = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 } as const;
const UDP_LIMIT_BYTES = 512;

export class TestDnsServer {
  /** Questions asked, as `name TYPE`, in order. */
  readonly queries: string[] = [];
  private readonly zone = new Map<string, NameRecords>();
  private readonly failing = new Map<string, 'SERVFAIL' | 'REFUSED'>();
  private readonly tcpSockets = new Set<Socket>();

  private constructor(
    private readonly udp: UdpSocket,
    private readonly tcp: Server,
    readonly port: number,
  ) {}

  /** Binds UDP and TCP on one free port of 127.0.0.1. */
  static async start(): Promise<TestDnsServer> {
    for (let attempt = 0; ; attempt++) {
      const udp = createSocket('udp4');
      await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
      const { port } = udp.address();
      const tcp = createServer();
      const bound = await new Promise<boolean>((resolve) => {
        tcp.once('error', () => resolve(false));
        tcp.listen(port, '127.0.0.1', () => resolve(true));
      });
      if (bound) {
        const server = new TestDnsServer(udp, tcp, port);
        server.serve();
        return server;
      }
      udp.close();
      if (attempt > 20) throw new Error('no port free for both UDP and TCP');
    }
  }

  /** `host:port` for Resolver.setServers. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Replaces the records of `name` (it exists from now on: a missing type is NODATA, not NXDOMAIN). */
  set(name: string, records: NameRecords): void {
    this.zone.set(canonical(name), records);
    this.failing.delete(canonical(name));
  }

  /** Makes `name` unknown (NXDOMAIN). */
  delete(name: string): void {
    this.zone.delete(canonical(name));
  }

  /** Answers every question about `name` with this error code until `set` is called again. */
  fail(name: string, rcode: 'SERVFAIL' | 'REFUSED'): void {
    this.failing.set(canonical(name), rcode);
  }

  async close(): Promise<void> {
    for (const socket of this.tcpSockets) socket.destroy();
    await Promise.all([
      new Promise<void>((resolve) => this.udp.close(() => resolve())),
      new Promise<void>((resolve) => this.tcp.close(() => resolve())),
    ]);
  }

  private serve(): void {
    this.udp.on('message', (query, peer) => {
      const answer = this.answer(query, UDP_LIMIT_BYTES);
      if (answer) this.udp.send(answer, peer.port, peer.address);
    });
    this.tcp.on('connection', (socket) => {
      this.tcpSockets.add(socket);
      socket.on('close', () => this.tcpSockets.delete(socket));
      socket.on('error', () => socket.destroy());
      let buffered = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
          const query = buffered.subarray(2, 2 + buffered.readUInt16BE(0));
          buffered = buffered.subarray(2 + query.length);
          const answer = this.answer(query, 65_535);
          if (answer) socket.write(Buffer.concat([u16(answer.length), answer]));
        }
      });
    });
  }

  /** The response to one query, truncated (TC, no answers) past `limit` bytes; null if unparseable. */
  private answer(query: Buffer, limit: number): Buffer | null {
    if (query.length < 12 || query.readUInt16BE(4) < 1) return null;
    let offset = 12;
    const labels: string[] = [];
    while (offset < query.length && query[offset]! > 0) {
      const length = query[offset]!;
      labels.push(query.toString('latin1', offset + 1, offset + 1 + length));
      offset += 1 + length;
    }
    offset += 1;
    if (offset + 4 > query.length) return null;
    const qtype = query.readUInt16BE(offset);
    const question = query.subarray(12, offset + 4);
    const name = canonical(labels.join('.'));
    const type = (Object.keys(TYPES) as RecordType[]).find((t) => TYPES[t] === qtype);
    this.queries.push(`${name} ${type ?? qtype}`);

    const records = this.zone.get(name);
    const failure = this.failing.get(name);
    const rcode = failure ? RCODE[failure] : records ? RCODE.NOERROR : RCODE.NXDOMAIN;
    const answers = rcode === RCODE.NOERROR && type ? encodeAnswers(type, records!) : [];
    const header = (count: number, truncated: boolean) => {
      const h = Buffer.alloc(12);
      h.writeUInt16BE(query.readUInt16BE(0), 0);
      // QR, AA, the query's RD, RA; TC when truncated.
      const rd = query.readUInt16BE(2) & 0x0100;
      h.writeUInt16BE(0x8000 | 0x0400 | (truncated ? 0x0200 : 0) | rd | 0x0080 | rcode, 2);
      h.writeUInt16BE(1, 4);
      h.writeUInt16BE(count, 6);
      return h;
    };
    const full = Buffer.concat([header(answers.length, false), question, ...answers]);
    return full.length <= limit ? full : Buffer.concat([header(0, true), question]);
  }
}

function encodeAnswers(type: RecordType, records: NameRecords): Buffer[] {
  const rr = (ttl: number, rdata: Buffer) =>
    // 0xC00C: the question name, at offset 12.
    Buffer.concat([u16(0xc00c), u16(TYPES[type]), u16(1), u32(ttl), u16(rdata.length), rdata]);
  if (type === 'SRV')
    return (records.SRV ?? []).map((r) =>
      rr(r.ttl, Buffer.concat([u16(r.priority), u16(r.weight), u16(r.port), encodeName(r.target)])),
    );
  return (records[type] ?? []).map((r) =>
    rr(r.ttl, type === 'A' ? Buffer.from(r.address.split('.').map(Number)) : ipv6Bytes(r.address)),
  );
}

function encodeName(name: string): Buffer {
  const labels = canonical(name).split('.').filter(Boolean);
  return Buffer.concat([
    ...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])),
    Buffer.from([0]),
  ]);
}

function ipv6Bytes(address: string): Buffer {
  if (!isIPv6(address)) throw new Error(`not an IPv6 address: ${address}`);
  const [head, tail] = address.split('::') as [string, string | undefined];
  const groups = (s: string | undefined) => (s ? s.split(':') : []);
  const missing = 8 - groups(head).length - groups(tail).length;
  const all =
    tail === undefined ? groups(head) : [...groups(head), ...Array(missing).fill('0'), ...groups(tail)];
  return Buffer.concat(all.map((g) => u16(Number.parseInt(g, 16))));
}

const canonical = (name: string) => name.toLowerCase().replace(/\.$/, '');
const u16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
};
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
