import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../spiffe/clock.js';
import type { Connector, Handler, Layer } from '../resilience/index.js';
import { RequestAbort, UpstreamStates } from '../resilience/index.js';
import { buildConnectStack, buildRequestStack, type UpstreamContext } from './router.js';

const upstream: UpstreamContext = {
  name: 'orders',
  state: new UpstreamStates().stateFor('orders'),
  clock: new ManualClock(0),
};

const terminal: Handler = async () => {
  throw new Error('terminal reached');
};

describe('the outbound stacks', () => {
  it('are their terminals themselves while no layer is configured: the happy path pays nothing', () => {
    expect(buildRequestStack(upstream, terminal)).toBe(terminal);
    expect(buildRequestStack(upstream, terminal, [])).toBe(terminal);
    const connector: Connector = async () => {
      throw new Error('unused');
    };
    expect(buildConnectStack(upstream, connector)).toBe(connector);
  });

  it('put the outer layers (the test seam) outside everything, first outermost', async () => {
    const log: string[] = [];
    const tag =
      (name: string): Layer =>
      (next) =>
      (request, signal) => {
        log.push(name);
        return next(request, signal);
      };
    const stack = buildRequestStack(upstream, terminal, [tag('first'), tag('second')]);
    const request = { method: 'GET', path: '/', headers: [], body: null };
    await expect(stack(request, new RequestAbort())).rejects.toThrow('terminal reached');
    expect(log).toEqual(['first', 'second']);
  });
});
