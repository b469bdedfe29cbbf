import { describe, expect, it } from 'vitest';
import { isSigilError } from '../../spiffe/errors.js';
import { ProxyError, proxyErrorResponse } from '../errors.js';
import {
  type ConnectLayer,
  type Connector,
  compose,
  type Handler,
  type Layer,
  type ProxyRequest,
} from './layer.js';
import { RequestAbort, type RequestSignal } from './request-signal.js';
import { UpstreamStates } from './upstream-state.js';

const REQUEST: ProxyRequest = Object.freeze({
  method: 'GET',
  path: '/x',
  headers: ['host', 'b'],
  body: null,
});

/** A fake upstream: records what reached it and answers 200 with an empty body. */
function fakeTerminal() {
  const seen: { request: ProxyRequest; signal: RequestSignal }[] = [];
  const handler: Handler = async (request, signal) => {
    seen.push({ request, signal });
    return {
      statusCode: 200,
      statusText: 'OK',
      rawHeaders: [],
      body: {
        pipeTo: (sink, done) => {
          sink.end();
          done(null);
        },
        discard: () => {},
      },
    };
  };
  return { handler, seen };
}

/** A layer that logs its name on the way in and on the way out. */
function tracing(name: string, log: string[]): Layer {
  return (next) => async (request, signal) => {
    log.push(`${name} in`);
    const response = await next(request, signal);
    log.push(`${name} out`);
    return response;
  };
}

describe('compose', () => {
  it('runs layers first-outermost: in by list order, out in reverse, the terminal innermost', async () => {
    const log: string[] = [];
    const terminal: Handler = async (request, signal) => {
      log.push('terminal');
      return fakeTerminal().handler(request, signal);
    };
    const stack = compose([tracing('route', log), tracing('endpoint', log)], terminal);
    await stack(REQUEST, new RequestAbort());
    expect(log).toEqual(['route in', 'endpoint in', 'terminal', 'endpoint out', 'route out']);
  });

  it('gives back the terminal itself for an empty list, request and connection stacks alike', () => {
    const { handler } = fakeTerminal();
    expect(compose([], handler)).toBe(handler);
    const connector: Connector = async () => {
      throw new Error('unused');
    };
    expect(compose<Connector>([], connector)).toBe(connector);
  });

  it('builds each layer once, at compose time, not per request', async () => {
    let built = 0;
    const counting: Layer = (next) => {
      built++;
      return next;
    };
    const stack = compose([counting, counting], fakeTerminal().handler);
    await stack(REQUEST, new RequestAbort());
    await stack(REQUEST, new RequestAbort());
    expect(built).toBe(2);
  });

  it('lets a layer short-circuit with a ProxyError: the terminal is never called, the edge maps its status', async () => {
    const terminal = fakeTerminal();
    const refuse: Layer = () => async () => {
      throw new ProxyError('overloaded', 'proxy: upstream "orders" has 100 requests in flight, the limit');
    };
    const failure = await compose([refuse], terminal.handler)(REQUEST, new RequestAbort()).catch((e) => e);
    expect(terminal.seen).toEqual([]);
    expect(failure).toBeInstanceOf(ProxyError);
    expect(isSigilError(failure, 'ERR_UNAVAILABLE')).toBe(true);
    expect(failure.reason).toBe('overloaded');
    expect(proxyErrorResponse(failure)).toEqual({ status: 503, error: 'overloaded' });
  });

  it('passes the signal down to the terminal: an abort from outside reaches it, with its reason', async () => {
    const terminal = fakeTerminal();
    const log: string[] = [];
    const stack = compose([tracing('a', log), tracing('b', log)], terminal.handler);
    const abort = new RequestAbort();
    await stack(REQUEST, abort);
    const reached = terminal.seen[0]!.signal;
    const reasons: unknown[] = [];
    reached.onAbort((reason) => reasons.push(reason));
    const why = new ProxyError('timeout', 'proxy: request took longer than 1000ms');
    abort.abort(why);
    expect(reached.aborted).toBe(true);
    expect(reached.reason).toBe(why);
    expect(reasons).toEqual([why]);
  });

  it('composes connection layers the same way', async () => {
    const log: string[] = [];
    const tag =
      (name: string): ConnectLayer =>
      (next) =>
      () => {
        log.push(name);
        return next();
      };
    const terminal: Connector = async () => {
      log.push('connect');
      throw new Error('refused');
    };
    await expect(compose([tag('outer'), tag('inner')], terminal)()).rejects.toThrow('refused');
    expect(log).toEqual(['outer', 'inner', 'connect']);
  });
});

describe('RequestAbort', () => {
  it('calls each listener once, in order; a listener added after the abort runs at once', () => {
    const abort = new RequestAbort();
    const calls: string[] = [];
    abort.onAbort((r) => calls.push(`first ${String(r)}`));
    abort.onAbort((r) => calls.push(`second ${String(r)}`));
    expect(abort.aborted).toBe(false);
    expect(abort.reason).toBeUndefined();
    abort.abort('gone');
    abort.abort('again');
    abort.onAbort((r) => calls.push(`late ${String(r)}`));
    expect(calls).toEqual(['first gone', 'second gone', 'late gone']);
    expect(abort.reason).toBe('gone');
  });
});

describe('UpstreamStates', () => {
  it('hands out one state per upstream name, the same object on every call', () => {
    const states = new UpstreamStates();
    const orders = states.stateFor('orders');
    expect(states.stateFor('orders')).toBe(orders);
    expect(states.stateFor('billing')).not.toBe(orders);
    expect(orders.name).toBe('orders');
  });
});
