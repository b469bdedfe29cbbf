// The HTTP/2 session pool of the gRPC relay, against a plain h2c server standing in for the
// upstream sidecar: sessions shared, a new one when the peer's stream limit is reached, at most
// MAX_SESSIONS, GOAWAY and close replace a session, idle sessions close, connect failures fail
// the waiting streams.
import { type ClientHttp2Session, createServer, type Http2Server, type ServerHttp2Session } from 'node:http2';
import { type AddressInfo, connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../spiffe/clock.js';
import { MAX_SESSIONS, SESSION_IDLE_MS, UpstreamSessions } from './h2-sessions.js';

const servers: { server: Http2Server; sessions: ServerHttp2Session[] }[] = [];
afterEach(async () => {
  for (const { server, sessions } of servers.splice(0)) {
    for (const session of sessions) session.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

/** An h2c server that holds every stream open until told; counts connections. */
async function startUpstream(maxConcurrentStreams: number) {
  const state = { connections: 0, sessions: [] as ServerHttp2Session[] };
  const server = createServer({ settings: { maxConcurrentStreams } });
  server.on('session', (session) => state.sessions.push(session));
  server.on('connection', () => state.connections++);
  server.on('stream', (stream) => {
    stream.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push({ server, sessions: state.sessions });
  const port = (server.address() as AddressInfo).port;
  return { state, port, server };
}

function pool(port: number, clock = new ManualClock(), refuse = false) {
  let connects = 0;
  let emptied = 0;
  const sessions = new UpstreamSessions(
    {
      name: 'svc',
      connect: () => {
        connects++;
        if (refuse) return Promise.reject(new Error('refused'));
        const socket = connect({ host: '127.0.0.1', port });
        return new Promise((resolve) => socket.once('connect', () => resolve({ socket, serverId: 'id' })));
      },
    },
    clock,
    () => {},
    () => emptied++,
  );
  return { sessions, clock, connects: () => connects, emptied: () => emptied };
}

function acquire(sessions: UpstreamSessions): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) =>
    sessions.acquire((session, err) => (session === null ? reject(err) : resolve(session))),
  );
}

/** Opens a stream on an acquired session, counted by the pool. */
async function openStream(sessions: UpstreamSessions) {
  const session = await acquire(sessions);
  const stream = session.request({ ':path': '/a.B/C', ':method': 'POST' });
  stream.on('error', () => {});
  sessions.opened(session);
  stream.once('close', () => sessions.closed(session));
  return { session, stream };
}

/** Resolves after a PING round trip: the peer's SETTINGS, sent first, are in by then. */
const settled = (session: ClientHttp2Session) =>
  new Promise<void>((resolve, reject) => session.ping((err) => (err ? reject(err) : resolve())));

describe('UpstreamSessions', () => {
  it('shares one session until the peer limit, then opens more, up to MAX_SESSIONS', async () => {
    const upstream = await startUpstream(2);
    const { sessions, connects } = pool(upstream.port);
    const first = await openStream(sessions);
    await settled(first.session);
    const second = await openStream(sessions);
    expect(second.session).toBe(first.session);
    expect(connects()).toBe(1);
    // Full at 2 streams: the next one gets a new session.
    const third = await openStream(sessions);
    expect(third.session === first.session).toBe(false);
    expect(connects()).toBe(2);
    for (let i = 3; i < 2 * MAX_SESSIONS + 3; i++) {
      const opened = await openStream(sessions);
      await settled(opened.session);
    }
    expect(connects()).toBe(MAX_SESSIONS);
    expect(sessions.size).toBe(MAX_SESSIONS);
    sessions.close();
  });

  it('streams waiting for a connecting session all get it; a failed connect fails them all', async () => {
    const upstream = await startUpstream(100);
    const ok = pool(upstream.port);
    const [a, b, c] = await Promise.all([acquire(ok.sessions), acquire(ok.sessions), acquire(ok.sessions)]);
    expect(b).toBe(a);
    expect(c).toBe(a);
    expect(ok.connects()).toBe(1);
    ok.sessions.close();
    const failing = pool(upstream.port, new ManualClock(), true);
    const results = await Promise.allSettled([acquire(failing.sessions), acquire(failing.sessions)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(failing.connects()).toBe(1);
    // Nothing left in it: its owner may drop it.
    expect(failing.emptied()).toBe(1);
  });

  it('replaces a session after GOAWAY, and drops a closed one', async () => {
    const upstream = await startUpstream(100);
    const { sessions, connects } = pool(upstream.port);
    const first = await openStream(sessions);
    await settled(first.session);
    const goaway = new Promise((resolve) => first.session.once('goaway', resolve));
    upstream.state.sessions[0]!.goaway();
    await goaway;
    const next = await openStream(sessions);
    expect(next.session === first.session).toBe(false);
    expect(connects()).toBe(2);
    const closed = new Promise((resolve) => next.session.once('close', resolve));
    upstream.state.sessions[1]!.destroy();
    await closed;
    const third = await openStream(sessions);
    expect(third.session === next.session).toBe(false);
    expect(connects()).toBe(3);
    sessions.close();
  });

  it('retires every session on rotation: open streams finish, new ones get a new session', async () => {
    const upstream = await startUpstream(100);
    const { sessions, connects } = pool(upstream.port);
    const old = await openStream(sessions);
    await settled(old.session);
    sessions.retire();
    const fresh = await openStream(sessions);
    expect(fresh.session === old.session).toBe(false);
    expect(connects()).toBe(2);
    // The old session waits for its stream before it goes.
    expect(old.session.destroyed).toBe(false);
    const closed = new Promise((resolve) => old.session.once('close', resolve));
    old.stream.close();
    await closed;
    expect(sessions.size).toBe(1);
    sessions.close();
  });

  it('closes a session left without streams for SESSION_IDLE_MS', async () => {
    const upstream = await startUpstream(100);
    const { sessions, clock, emptied } = pool(upstream.port);
    const opened = await openStream(sessions);
    // A session with a stream open is never idle.
    await clock.advance(2 * SESSION_IDLE_MS);
    expect(opened.session.closed).toBe(false);
    const closed = new Promise((resolve) => opened.stream.once('close', resolve));
    opened.stream.close();
    await closed;
    await clock.advance(SESSION_IDLE_MS / 2);
    expect(opened.session.closed).toBe(false);
    const sessionClosed = new Promise((resolve) => opened.session.once('close', resolve));
    await clock.advance(SESSION_IDLE_MS);
    expect(opened.session.closed).toBe(true);
    await sessionClosed;
    expect(sessions.size).toBe(0);
    expect(emptied()).toBe(1);
    sessions.close();
  });
});
