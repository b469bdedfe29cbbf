import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../spiffe/clock.js';
import { isSigilError, type SigilError } from '../../spiffe/errors.js';
import { untilPolled } from '../file-watch.test-support.js';
import { loadRouteFile, type RoutesWatch, watchRouteFile } from './load.js';
import type { RouteTable } from './model.js';

const POLL_MS = 1_000;

const routeTo = (backend: string) => `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: web }
spec:
  parentRefs: [{ group: "", kind: Service, name: web }]
  rules: [{ backendRefs: [{ name: ${backend} }] }]
`;

let dir: string;
let file: string;
let watch: RoutesWatch | null;
let clock: ManualClock;
let changes: RouteTable[];
let errors: SigilError[];
let services: Set<string>;

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'sigil-routes-'));
  file = path.join(dir, 'routes.yaml');
  watch = null;
  clock = new ManualClock();
  changes = [];
  errors = [];
  services = new Set(['web', 'web-v2']);
});

afterEach(() => {
  watch?.close();
  rmSync(dir, { recursive: true, force: true });
});

function start(): RoutesWatch {
  watch = watchRouteFile(file, () => services, {
    onChange: (table) => changes.push(table),
    onError: (err) => errors.push(err),
    clock,
    pollIntervalMs: POLL_MS,
    debounceMs: 50,
  });
  return watch;
}

const until = (done: () => boolean) => untilPolled(clock, POLL_MS, done);

const backend = (table: RouteTable) => table.http.get('web')?.[0]?.rule.backends[0]?.service;

describe('loadRouteFile', () => {
  it('reads and parses the file', () => {
    writeFileSync(file, routeTo('web-v2'));
    expect(backend(loadRouteFile(file, services))).toBe('web-v2');
  });

  it('refuses a missing file, a broken one and one over 1 MiB, as config errors', () => {
    expect(() => loadRouteFile(file, services)).toThrow(`routes file ${file} could not be read (ENOENT)`);
    writeFileSync(file, routeTo('nope'));
    expect(() => loadRouteFile(file, services)).toThrow(
      /backendRefs\[0\]\.name: "nope" is not a configured service/,
    );
    writeFileSync(file, `# ${'x'.repeat(1024 * 1024)}`);
    expect(() => loadRouteFile(file, services)).toThrow(
      expect.objectContaining({
        code: 'ERR_CONFIG_INVALID',
        message: expect.stringMatching(/is 1048578 bytes/),
      }),
    );
  });
});

describe('watchRouteFile', () => {
  it('applies a valid change without a restart', async () => {
    writeFileSync(file, routeTo('web'));
    const w = start();
    expect(backend(w.current())).toBe('web');
    writeFileSync(file, routeTo('web-v2'));
    await until(() => changes.length > 0);
    expect(backend(w.current())).toBe('web-v2');
  });

  it('keeps the previous table when the file breaks, and recovers', async () => {
    writeFileSync(file, routeTo('web'));
    const w = start();
    const before = w.current();
    writeFileSync(file, routeTo('gone'));
    await until(() => errors.length > 0);
    expect(isSigilError(errors[0], 'ERR_CONFIG_INVALID')).toBe(true);
    expect(errors[0]!.message).toContain('"gone" is not a configured service');
    expect(w.current()).toBe(before);
    writeFileSync(file, routeTo('web-v2'));
    await until(() => changes.length > 0);
    expect(backend(w.current())).toBe('web-v2');
  });

  it('checks names against the services in force at each reload', async () => {
    writeFileSync(file, routeTo('web'));
    const w = start();
    services = new Set(['web', 'canary']);
    writeFileSync(file, routeTo('canary'));
    await until(() => changes.length > 0);
    expect(backend(w.current())).toBe('canary');
  });
});
