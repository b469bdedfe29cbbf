import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { isSigilError } from '../../spiffe/errors.js';
import { checkProxyConfig, loadProxyConfig } from '../config.js';
import { diffProxyConfig } from '../config-watch.js';

const BASE = { inbound: [{ name: 'api', listen: '127.0.0.1:15001', app: '127.0.0.1:8080' }] };

function problems(raw: unknown): string[] {
  try {
    checkProxyConfig(raw, '/etc/sigil/proxy.yaml');
  } catch (err) {
    if (isSigilError(err, 'ERR_CONFIG_INVALID'))
      return err.message
        .split('\n')
        .slice(1)
        .map((l) => l.trim());
    throw err;
  }
  throw new Error('expected ERR_CONFIG_INVALID');
}

describe('tracing and access_log config', () => {
  it('are off when absent', () => {
    const config = checkProxyConfig(BASE, '/etc/sigil/proxy.yaml');
    expect(config.tracing).toBeNull();
    expect(config.accessLog).toBeNull();
  });

  it('reads every key, with defaults for those left out', () => {
    const config = checkProxyConfig(
      {
        ...BASE,
        tracing: {
          collector: 'http://127.0.0.1:4318/v1/traces',
          sample_ratio: 0.25,
          service_name: 'frontend-sidecar',
          propagation: ['w3c', 'b3'],
          batch: { max_queue: 100, max_batch: 10, interval: '1s', export_timeout: '2s' },
        },
        access_log: { sample_ratio: 0.5, path: 'logs/access.jsonl' },
      },
      '/etc/sigil/proxy.yaml',
    );
    expect(config.tracing).toEqual({
      collector: 'http://127.0.0.1:4318/v1/traces',
      sampleRatio: 0.25,
      serviceName: 'frontend-sidecar',
      propagation: ['w3c', 'b3'],
      batch: { maxQueue: 100, maxBatch: 10, intervalMs: 1_000, exportTimeoutMs: 2_000 },
    });
    expect(config.accessLog).toEqual({ sampleRatio: 0.5, path: '/etc/sigil/logs/access.jsonl' });
    const defaults = checkProxyConfig(
      { ...BASE, tracing: { collector: 'https://otel.example:4318/v1/traces' }, access_log: {} },
      'p.yaml',
    );
    expect(defaults.tracing).toEqual({
      collector: 'https://otel.example:4318/v1/traces',
      sampleRatio: 0.01,
      serviceName: 'sigil-proxy',
      propagation: ['w3c'],
      batch: { maxQueue: 2048, maxBatch: 128, intervalMs: 5_000, exportTimeoutMs: 10_000 },
    });
    expect(defaults.accessLog).toEqual({ sampleRatio: 1, path: 'stdout' });
  });

  it('refuses bad values, naming the field', () => {
    expect(
      problems({
        ...BASE,
        tracing: {
          collector: 'ftp://collector/v1/traces',
          sample_ratio: 2,
          service_name: 'a\nb',
          propagation: ['b3', 'jaeger'],
          batch: { max_queue: 10, max_batch: 20, interval: '0s', export_timeout: '5m', extra: 1 },
          exporter: 'grpc',
        },
        access_log: { sample_ratio: -1, path: '' },
      }),
    ).toEqual([
      'tracing.exporter: unknown key (known keys: collector, sample_ratio, service_name, propagation, batch)',
      'tracing.collector: must be an http or https URL (got "ftp://collector/v1/traces")',
      'tracing.service_name: must be a name of 1 to 255 printable characters (got "a\\nb")',
      'tracing.propagation[1]: must be one of w3c, b3, b3multi (got "jaeger")',
      'tracing.batch.extra: unknown key (known keys: max_queue, max_batch, interval, export_timeout)',
      'tracing.batch.max_batch: must be at most max_queue (10) (got 20)',
      'tracing.sample_ratio: must be a number from 0 to 1 (got 2)',
      'tracing.batch.interval: "0s" must be greater than zero (examples: 90s, 30m, 1h)',
      'tracing.batch.export_timeout: must be at most 1m (got "5m")',
      'access_log.path: must be stdout or a file path (got "")',
      'access_log.sample_ratio: must be a number from 0 to 1 (got -1)',
    ]);
    expect(
      problems({ ...BASE, tracing: { collector: 'http://c/v1/traces', propagation: ['b3', 'b3'] } }),
    ).toEqual([
      'tracing.propagation: must list w3c: traceparent is always sent, B3 only besides it',
      'tracing.propagation: lists a format twice',
    ]);
    expect(problems({ ...BASE, tracing: {} })).toEqual([
      expect.stringMatching(/^tracing\.collector: must be the collector's OTLP\/HTTP traces URL/),
    ]);
    expect(problems({ ...BASE, tracing: { collector: 'http://u:p@host/v1/traces' } })).toEqual([
      'tracing.collector: must not carry credentials: they would be logged with the URL',
    ]);
    expect(problems({ ...BASE, tracing: { collector: 'not a url' } })).toEqual([
      'tracing.collector: "not a url" is not a URL',
    ]);
  });
});

describe('a reloaded config', () => {
  it('reports tracing and access_log changes as waiting for a restart', () => {
    const before = checkProxyConfig(BASE, 'p.yaml');
    const after = checkProxyConfig(
      { ...BASE, tracing: { collector: 'http://c:4318/v1/traces' }, access_log: {} },
      'p.yaml',
    );
    expect(diffProxyConfig(before, after).needsRestart).toEqual(['tracing', 'accessLog']);
  });
});

describe('deploy/proxy.example.yaml', () => {
  it('documents the tracing and access_log defaults in its commented blocks', () => {
    const text = readFileSync(
      fileURLToPath(new URL('../../../deploy/proxy.example.yaml', import.meta.url)),
      'utf8',
    );
    const block = (key: string) => {
      const lines = text.split('\n');
      const start = lines.indexOf(`#${key}:`);
      expect(start, key).toBeGreaterThan(-1);
      const body: string[] = [];
      for (const line of lines.slice(start)) {
        if (!line.startsWith('#')) break;
        body.push(line.slice(1));
      }
      return parseYaml(body.join('\n')) as Record<string, unknown>;
    };
    const tracing = block('tracing');
    const accessLog = block('access_log');
    const config = checkProxyConfig({ ...BASE, ...tracing, ...accessLog }, '/etc/sigil/proxy.yaml');
    const defaults = checkProxyConfig(
      { ...BASE, tracing: { collector: 'http://127.0.0.1:4318/v1/traces' }, access_log: {} },
      '/etc/sigil/proxy.yaml',
    );
    expect(config.tracing).toEqual(defaults.tracing);
    expect(config.accessLog).toEqual(defaults.accessLog);
    // Commented out: the example runs without tracing.
    expect(
      loadProxyConfig(fileURLToPath(new URL('../../../deploy/proxy.example.yaml', import.meta.url))).tracing,
    ).toBeNull();
  });
});
