import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAX_SOCKET_PATH_BYTES } from '../spiffe/socket-listen.js';
import { meshLayout, PORT_COUNT, PORT_SLOTS, portPlan } from './layout.js';

describe('meshLayout', () => {
  it('keeps everything under DIR/mesh, one folder per kind, sockets included when the path is short', () => {
    const layout = meshLayout('/home/ann/sigil/.sigil', 1000);
    expect(layout.root).toBe('/home/ann/sigil/.sigil/mesh');
    expect(layout.serverData).toBe('/home/ann/sigil/.sigil/mesh/server');
    expect(layout.agentData).toBe('/home/ann/sigil/.sigil/mesh/agent');
    expect(layout.logDir).toBe('/home/ann/sigil/.sigil/mesh/logs');
    expect(layout.workloadApiSocket).toBe('/home/ann/sigil/.sigil/mesh/sockets/agent/public/api.sock');
    expect(layout.socketFallback).toBeNull();
  });

  it('moves the sockets to a per-user, per-mesh directory under /tmp when the path is too long, and says why', () => {
    const deep = `/home/ann/${'very-long-folder-name/'.repeat(4)}.sigil`;
    const layout = meshLayout(deep, 1000);
    expect(layout.root).toBe(path.join(deep, 'mesh'));
    expect(layout.socketDir).toMatch(/^\/tmp\/sigil-mesh-1000\/[0-9a-f]{12}$/);
    for (const socket of [layout.serverAdminSocket, layout.agentAdminSocket, layout.workloadApiSocket]) {
      expect(socket.startsWith(layout.socketDir)).toBe(true);
      expect(Buffer.byteLength(socket)).toBeLessThanOrEqual(MAX_SOCKET_PATH_BYTES);
    }
    expect(layout.socketFallback).toContain('too deep for Unix socket paths');
    // Another mesh directory gets other sockets.
    expect(meshLayout(`${deep}2`, 1000).socketDir).not.toBe(layout.socketDir);
  });
});

describe('portPlan', () => {
  it('gives every listener its own port in one block from the base', () => {
    const plan = portPlan(7400);
    const ports = Object.values(plan).sort((a, b) => a - b);
    expect(ports).toEqual(Array.from({ length: PORT_COUNT }, (_, i) => 7400 + i));
    expect(plan.agentApi).toBe(7400);
    expect(plan.frontendOutbound).toBe(7400 + PORT_SLOTS.frontendOutbound.offset);
  });
});
