// The agent logger: one component key per line, error lines reported by component, secrets redacted.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createAgentLogger } from './logger.js';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return { lines, stream };
}

describe('createAgentLogger', () => {
  it('reports error and fatal lines by component, and nothing below error', () => {
    const errors: string[] = [];
    const { stream } = capture();
    const logger = createAgentLogger('debug', (component) => errors.push(component), stream);
    const sync = logger.child({ component: 'sync' });
    sync.warn('Server sync failed; retrying');
    sync.error({ err: new Error('boom') }, 'Saving the trust bundle failed');
    logger.child({ component: 'manager' }).fatal('Dropping expired SVIDs failed');
    logger.error('Agent admin request failed');
    expect(errors).toEqual(['sync', 'manager', 'agent']);
  });

  it('writes the component once and redacts keys and tokens', () => {
    const { lines, stream } = capture();
    const logger = createAgentLogger('info', () => {}, stream);
    logger.child({ component: 'identity' }).info({ joinToken: 'secret-token', key: 'PEM' }, 'Node attested');
    expect(lines).toHaveLength(1);
    expect(lines[0]!.match(/"component":/g)).toHaveLength(1);
    expect(lines[0]).not.toContain('secret-token');
    expect(lines[0]).not.toContain('PEM');
    expect(JSON.parse(lines[0]!)).toMatchObject({ service: 'sigil-agent', component: 'identity' });
  });
});
