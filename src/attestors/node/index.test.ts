import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createNodeAttestorAgent, createNodeAttestorServer, NODE_ATTESTOR_NAMES } from './index.js';
import type { NodeAttestorServerDeps } from './types.js';

const deps: NodeAttestorServerDeps = {
  joinTokens: {
    async fetchJoinToken() {
      return { spiffeId: null };
    },
  },
};

describe('node attestor registry', () => {
  it('names the three built-in attestors', () => {
    expect(NODE_ATTESTOR_NAMES).toEqual(['join_token', 'x509pop', 'k8s_sat']);
  });

  it('builds each half under its config name', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sigil-node-attestors-'));
    try {
      const key = path.join(dir, 'sa.pem');
      writeFileSync(
        key,
        generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }),
      );
      const k8s = createNodeAttestorServer(
        'k8s_sat',
        { clusters: { c1: { service_account_key_files: [key] } } },
        deps,
      );
      expect(k8s.name).toBe('k8s_sat');
      expect(createNodeAttestorServer('join_token', {}, deps).name).toBe('join_token');
      expect(createNodeAttestorAgent('join_token', { token: 'abc-123' }).name).toBe('join_token');
      expect(createNodeAttestorAgent('k8s_sat', { cluster: 'c1' }).name).toBe('k8s_sat');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses an unknown attestor, listing the valid ones', () => {
    const expected = expect.objectContaining({
      code: 'ERR_CONFIG_INVALID',
      field: 'node_attestors.aws_iid',
      message:
        'node_attestors.aws_iid: unknown node attestor "aws_iid" (valid: join_token, x509pop, k8s_sat)',
    });
    expect(() => createNodeAttestorServer('aws_iid', {}, deps)).toThrow(expected);
    expect(() => createNodeAttestorAgent('aws_iid', {})).toThrow(expected);
  });

  it('reports config problems under the field it is given', () => {
    expect(() =>
      createNodeAttestorServer('x509pop', { ca_bundle_path: '/nonexistent/ca.pem' }, deps),
    ).toThrow(
      expect.objectContaining({
        code: 'ERR_CONFIG_INVALID',
        field: 'node_attestors.x509pop.ca_bundle_path',
        message: 'node_attestors.x509pop.ca_bundle_path: cannot read /nonexistent/ca.pem: ENOENT',
      }),
    );
    expect(() =>
      createNodeAttestorAgent(
        'x509pop',
        { certificate_path: '/c', privat_key_path: '/k' },
        'agent.node_attestor',
      ),
    ).toThrow(/^agent\.node_attestor has 3 problems\n {2}agent\.node_attestor\.privat_key_path: unknown key/);
  });
});
