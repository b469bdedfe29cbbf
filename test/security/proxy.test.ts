// Attacks on the sidecar proxy (issue 9: items 4, 7, 8 and the smaller inputs), run against real
// processes: a server, an agent, and sidecars under their own uids with real SVIDs, in front of
// apps that record every path they are given. The attacker holds a valid SVID of its own (minted
// by the server) or talks plaintext to the local outbound and admin ports, as any local process can.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normalizeRequestTarget } from '../../src/proxy/policy/normalize.js';
import { freePort, waitFor } from '../support/agent-harness.js';
import { runCommand } from '../support/harness.js';
import { startSidecarProcess } from '../support/sidecar-harness.js';
import {
  agent,
  asAttacker,
  attacker,
  BACK_UID,
  backend,
  direct,
  exchange,
  metric,
  plain,
  ports,
  received,
  request,
  root,
  sidecars,
  startAttackEnv,
  statusOf,
  stopAttackEnv,
} from './proxy-env.js';

/** Generous: the point is that they close at all, on a loaded 2-core machine (timeouts are 1-2s). */
const CLOSED_WITHIN_MS = 8_000;
/** The glob that pinned the proxy at 100% CPU for minutes on a few hundred bytes of path. */
const PATHOLOGICAL = '/**/**/**/**/**/**/**/**/**/**/z';

beforeAll(startAttackEnv, 120_000);
afterAll(stopAttackEnv);

describe('item 4: policy decides on exactly the path the app receives', () => {
  /** target → the status a DENY on /admin/* must give: 400 refused as ambiguous, 403 denied, 200 allowed. */
  const BYPASSES: Array<[string, number]> = [
    ['/admin%2fx', 400],
    ['/admin%2Fx', 400],
    ['/api/..%2fadmin/x', 400],
    ['/api/%2e%2e%2fadmin/x', 400],
    ['/admin;x=1/y', 400],
    ['/admin%3bx=1/y', 400],
    ['/admin%5cx', 400],
    ['/admin\\x', 400],
    ['/api\\..\\admin\\x', 400],
    ['/admin%00', 400],
    ['/admin%0a', 400],
    ['/admin%252f', 400],
    ['/admin%25%32%66x', 400],
    ['/admin%zz', 400],
    ['/admin#/../ok', 400],
    ['http://app/admin/x', 400],
    ['/x/../admin/y', 403],
    ['/api/%2e%2e/admin/y', 403],
    ['//admin//y', 403],
    ['/./admin/./y', 403],
    ['/%61dmin/y', 403],
    ['/admin', 403],
    ['/admin/', 403],
    ['/ADMIN/y', 200],
    ['/api//v1/./users/../items?q=%2f..', 200],
  ];

  it.each(BYPASSES)('HTTP/1.1 through the outbound sidecar: %s → %i', async (target, status) => {
    expect(statusOf(await plain(ports.outHttp!, request(target)))).toBe(status);
  });

  it.each(BYPASSES)(
    'HTTP/1.1 straight to the inbound sidecar with an SVID: %s → %i',
    async (target, status) => {
      expect(statusOf(await direct(ports.inHttp!, request(target)))).toBe(status);
    },
  );

  it('curl --path-as-is and openssl s_client, whose requests no client library rewrote', async () => {
    const curl = async (target: string) =>
      (
        await runCommand('curl', [
          '-s',
          '--path-as-is',
          '-o',
          '/dev/null',
          '-w',
          '%{http_code}',
          `http://127.0.0.1:${ports.outHttp}${target}`,
        ])
      ).stdout;
    expect(await curl('/api/../admin/x')).toBe('403');
    expect(await curl('/api/..%2fadmin/x')).toBe('400');
    expect(await curl('/admin;jsessionid=1/x')).toBe('400');
    const openssl = (target: string) =>
      new Promise<string>((resolve) => {
        const child = spawn(
          'openssl',
          [
            's_client',
            '-connect',
            `127.0.0.1:${ports.inHttp}`,
            '-cert',
            attacker.certFile,
            '-key',
            attacker.keyFile,
            '-quiet',
            '-ign_eof',
          ],
          { stdio: ['pipe', 'pipe', 'ignore'] },
        );
        let out = '';
        child.stdout.on('data', (c: Buffer) => {
          out += c;
        });
        child.on('close', () => resolve(out));
        child.stdin.end(request(target));
      });
    expect(statusOf(await openssl('/admin%5c..%5cx'))).toBe(400);
    expect(statusOf(await openssl('/x/../admin/x'))).toBe(403);
  });

  it('HTTP/2 relayed per stream: the :path is normalized, refused or denied the same way', async () => {
    const session = http2.connect(`http://127.0.0.1:${ports.outH2}`);
    session.on('error', () => {});
    const status = (target: string) =>
      new Promise<number>((resolve) => {
        const req = session.request({ ':path': target });
        let got = 0;
        req.on('response', (h) => {
          got = Number(h[':status']);
        });
        req.on('data', () => {});
        req.on('close', () => resolve(got));
        req.end();
      });
    try {
      expect(await status('/admin%2fx')).toBe(400);
      expect(await status('/admin\\x')).toBe(400);
      expect(await status('/x/../admin/y')).toBe(403);
      expect(await status('/pkg.Svc/../pkg.Svc/%4Dethod')).toBe(200);
    } finally {
      session.close();
    }
    expect(received).toContain('/pkg.Svc/Method');
  });

  it('WebSocket upgrades: the normalized path, or a refusal', async () => {
    const upgrade = (target: string) =>
      `GET ${target} HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`;
    expect(statusOf(await plain(ports.outHttp!, upgrade('/ws%2f..%2fadmin/x')))).toBe(400);
    expect(statusOf(await plain(ports.outHttp!, upgrade('/ws/../admin/x')))).toBe(403);
    expect(statusOf(await plain(ports.outHttp!, upgrade('/ws/./live')))).toBe(101);
    expect(received).toContain('/ws/live');
  });

  it('the apps were only ever given paths in normal form, none under /admin, each one the policy decided on', async () => {
    // Only what was allowed arrived, over HTTP/1.1 (both ways in), HTTP/2 and an upgrade.
    expect(new Set(received)).toEqual(
      new Set(['/ADMIN/y', '/api/v1/items?q=%2f..', '/pkg.Svc/Method', '/ws/live']),
    );
    // The count of audit lines is no sign: earlier requests were audited too. Wait for each path.
    const paths = new Set(received.map((target) => target.split('?')[0]!));
    const decidedPaths = () => new Set(backend.lines('Request audited').map((line) => line.path));
    await waitFor(
      () => [...paths].every((path) => decidedPaths().has(path)),
      10_000,
      () => `audit lines missing for ${[...paths].filter((path) => !decidedPaths().has(path)).join(', ')}`,
    );
    const decided = decidedPaths();
    for (const target of received) {
      const normalized = normalizeRequestTarget(target);
      expect(normalized.ok && normalized.target, target).toBe(target);
      const path = target.split('?')[0]!;
      expect(path === '/admin' || path.startsWith('/admin/'), target).toBe(false);
      expect(decided.has(path), `${path} reached the app but was never decided on`).toBe(true);
    }
    expect(backend.lines('Refused').some((line) => line.reason === 'bad-path')).toBe(true);
  });
});

describe('smaller inputs: malformed requests get a clear status and never reach the app', () => {
  it('two Host headers: 400, through the outbound sidecar and straight to the inbound one', async () => {
    const before = received.length;
    for (const answer of [
      await plain(ports.outHttp!, request('/api/x', 'Host: evil\r\n')),
      await direct(ports.inHttp!, request('/api/x', 'Host: evil\r\n')),
    ]) {
      expect(statusOf(answer)).toBe(400);
      expect(answer).toContain('x-sigil-error: duplicate-host');
    }
    expect(received.length).toBe(before);
  });

  it('a 100 KB header over mTLS: 431, not a silent close', async () => {
    const answer = await direct(ports.inHttp!, request('/api/x', `X-Big: ${'a'.repeat(100 * 1024)}\r\n`));
    expect(answer).toMatch(
      /^HTTP\/1\.1 431 Request Header Fields Too Large\r\nx-sigil-error: header-too-large\r\n/,
    );
  });

  it.each([
    ['two Content-Length fields', 'Content-Length: 1\r\nContent-Length: 2\r\n\r\nab'],
    [
      'Content-Length and Transfer-Encoding',
      'Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    ],
    ['Transfer-Encoding twice', 'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
  ])('request smuggling with %s: refused by the parser (400) on both sides', async (_what, rest) => {
    const before = received.length;
    const head = 'POST /api/x HTTP/1.1\r\nHost: app\r\n';
    expect(statusOf(await plain(ports.outHttp!, head + rest))).toBe(400);
    expect(statusOf(await direct(ports.inHttp!, head + rest))).toBe(400);
    expect(received.length).toBe(before);
  });
});

describe('item 8: slow and idle connections are closed, connections are capped', () => {
  it('40 slowloris connections over mTLS (a header byte every second) are all closed by the header timeout', async () => {
    const startedMs = performance.now();
    const attacks = Array.from({ length: 40 }, () => {
      const socket = asAttacker(ports.inHttp!);
      socket.on('secureConnect', () => {
        socket.write('GET /api/x HTTP/1.1\r\nHost: app\r\n');
        const timer = setInterval(() => socket.write('X'), 1_000);
        socket.once('close', () => clearInterval(timer));
      });
      return exchange(socket, '', 'never');
    });
    // The sidecar keeps serving meanwhile.
    expect(statusOf(await plain(ports.outHttp!, request('/api/ok')))).toBe(200);
    const answers = await Promise.all(attacks);
    expect(performance.now() - startedMs).toBeLessThan(CLOSED_WITHIN_MS);
    expect(answers.every((a) => a.startsWith('HTTP/1.1 408 '))).toBe(true);
    expect(
      await metric(ports.backAdmin!, 'sigil_proxy_timeouts_total', { listener: 'api', timeout: 'header' }),
    ).toBeGreaterThanOrEqual(40);
  });

  it('a TLS caller that completes the handshake and sends nothing is closed', async () => {
    const startedMs = performance.now();
    const answer = await exchange(asAttacker(ports.inHttp!), '', 'never');
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(performance.now() - startedMs).toBeLessThan(CLOSED_WITHIN_MS);
  });

  it('a TCP caller that never starts the TLS handshake is closed', async () => {
    const startedMs = performance.now();
    await exchange(net.connect(ports.inHttp!, '127.0.0.1'), '', 'never');
    expect(performance.now() - startedMs).toBeLessThan(CLOSED_WITHIN_MS);
  });

  it('an HTTP/2 caller that sends the preface and stalls is closed', async () => {
    const startedMs = performance.now();
    await exchange(asAttacker(ports.inH2!), 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'secureConnect');
    expect(performance.now() - startedMs).toBeLessThan(CLOSED_WITHIN_MS);
    expect(
      await metric(ports.backAdmin!, 'sigil_proxy_timeouts_total', { listener: 'grpc', timeout: 'idle' }),
    ).toBeGreaterThanOrEqual(1);
  });

  it('the plaintext outbound and admin ports close a slowloris head too', async () => {
    const slow = (port: number) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.on('connect', () => {
        socket.write('GET /ready HTTP/1.1\r\n');
        const timer = setInterval(() => socket.write('X'), 1_000);
        socket.once('close', () => clearInterval(timer));
      });
      return exchange(socket, '', 'never');
    };
    const startedMs = performance.now();
    const answers = await Promise.all([
      slow(ports.outHttp!),
      slow(ports.frontAdmin!),
      slow(ports.backAdmin!),
    ]);
    expect(performance.now() - startedMs).toBeLessThan(CLOSED_WITHIN_MS);
    expect(answers.every((a) => a.startsWith('HTTP/1.1 408 '))).toBe(true);
  });

  it('the connection past max_connections is closed at once, counted and logged', async () => {
    const held = Array.from({ length: 5 }, () => asAttacker(ports.inCapped!));
    await Promise.all(held.map((s) => new Promise((resolve) => s.once('secureConnect', resolve))));
    try {
      const startedMs = performance.now();
      expect(await exchange(asAttacker(ports.inCapped!), 'ping', 'secureConnect')).toBe('');
      expect(performance.now() - startedMs).toBeLessThan(CLOSED_WITHIN_MS);
      // The five already in still work.
      const echoed = new Promise<string>((resolve) =>
        held[0]!.once('data', (c: Buffer) => resolve(c.toString())),
      );
      held[0]!.write('still here');
      expect(await echoed).toBe('still here');
    } finally {
      for (const socket of held) socket.destroy();
    }
    expect(
      await metric(ports.backAdmin!, 'sigil_proxy_refusals_total', {
        listener: 'capped',
        reason: 'max-connections',
      }),
    ).toBeGreaterThanOrEqual(1);
    await waitFor(
      () => backend.lines('Refused').some((l) => l.reason === 'max-connections' && l.listener === 'capped'),
      10_000,
      () => `no refusal logged:\n${backend.logs()}`,
    );
  });
});

describe('item 7: a pathological glob neither stalls the proxy nor keeps it from stopping', () => {
  it('answers every request, stays responsive, and exits promptly on SIGTERM', async () => {
    const [inGlob, globAdmin] = [await freePort(), await freePort()];
    const policyPath = path.join(root.dir, 'glob-policy.yaml');
    writeFileSync(
      policyPath,
      `policies:\n  - name: deny-z\n    action: DENY\n    rules:\n      - to: { paths: ["${PATHOLOGICAL}"] }\n`,
    );
    const sidecar = await startSidecarProcess(
      BACK_UID,
      root.dir,
      'glob',
      `workload_api: unix://${agent.socketPath}
admin: 127.0.0.1:${globAdmin}
policy_file: ${policyPath}
inbound:
  - { name: glob, listen: "127.0.0.1:${inGlob}", protocol: http, app: "127.0.0.1:${ports.glob}" }
`,
    );
    sidecars.push(sidecar);
    try {
      // 8 KB of path that almost matches: the old regex backtracked through every split of it.
      const segments = (n: number, last: string) =>
        `/${Array.from({ length: n }, () => 'a').join('/')}/${last}`;
      const attacks = Array.from({ length: 20 }, (_, i) => direct(inGlob, request(segments(4_000 + i, 'y'))));
      const startedMs = performance.now();
      const live = await new Promise<number>((resolve, reject) =>
        http
          .get({ host: '127.0.0.1', port: globAdmin, path: '/live', timeout: CLOSED_WITHIN_MS }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          })
          .on('timeout', () => reject(new Error('/live did not answer: the event loop is blocked')))
          .on('error', reject),
      );
      expect(live).toBe(200);
      const answers = await Promise.all(attacks);
      expect(answers.map(statusOf)).toEqual(Array(20).fill(200));
      expect(statusOf(await direct(inGlob, request(segments(4_000, 'z'))))).toBe(403);
      expect(performance.now() - startedMs).toBeLessThan(CLOSED_WITHIN_MS);
      // And while being sent more of them, it still stops when told to.
      for (let i = 0; i < 10; i++) void direct(inGlob, request(segments(4_000 + i, 'y')));
      const stoppedMs = performance.now();
      expect(await sidecar.stop(CLOSED_WITHIN_MS)).toBe(0);
      expect(performance.now() - stoppedMs).toBeLessThan(CLOSED_WITHIN_MS);
    } finally {
      if (sidecar.child.exitCode === null) sidecar.child.kill('SIGKILL');
    }
  }, 60_000);
});
