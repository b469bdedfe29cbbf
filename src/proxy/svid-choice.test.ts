import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { isSigilError } from '../spiffe/errors.js';
import { type OfferedSvid, SvidChoice } from './svid-choice.js';

const FRONT = 'spiffe://sigil.local/frontend';
const BACK = 'spiffe://sigil.local/backend';

function svid(id: string, expiresAtMs = 1_800_000_000_000): OfferedSvid {
  return { spiffeId: { toString: () => id }, expiresAtMs };
}

function recordingLogger() {
  const lines: Array<{ level: string; msg: string; fields: Record<string, unknown> }> = [];
  return {
    lines,
    info: (fields: Record<string, unknown>, msg: string) => lines.push({ level: 'info', msg, fields }),
    warn: (fields: Record<string, unknown>, msg: string) => lines.push({ level: 'warn', msg, fields }),
  };
}

/** An X509Source as far as the choice sees it: a context that updates replace whole. */
class FakeSource extends EventEmitter<{ update: [] }> {
  constructor(public svids: OfferedSvid[]) {
    super();
  }
  getContext() {
    return { svids: this.svids };
  }
  push(svids: OfferedSvid[]) {
    this.svids = svids;
    this.emit('update');
  }
}

describe('SvidChoice', () => {
  it('picks the configured ID wherever it sits among the SVIDs, not the default first one', () => {
    const choice = new SvidChoice(FRONT, recordingLogger());
    const front = svid(FRONT);
    expect(choice.pick([svid(BACK), front])).toBe(front);
  });

  it('waits until the ID is offered, logging once per offered set which IDs came and that it is missing', async () => {
    const logger = recordingLogger();
    const choice = new SvidChoice(FRONT, logger);
    const source = new FakeSource([svid(BACK)]);
    let offered = false;
    const waiting = choice.whenOffered(source).then(() => {
      offered = true;
    });
    source.push([svid(BACK)]); // the same set again (a rotation): no second line
    await Promise.resolve();
    expect(offered).toBe(false);
    expect(logger.lines).toEqual([
      {
        level: 'warn',
        msg: 'Configured spiffe_id is not among the SVIDs the Workload API offers; not ready until it is',
        fields: { spiffeId: FRONT, offered: [BACK] },
      },
    ]);
    expect(() => choice.pick([svid(BACK)])).toThrow(
      /offers no SVID for spiffe_id "spiffe:\/\/sigil.local\/frontend"/,
    );
    source.push([svid(BACK), svid('spiffe://sigil.local/other')]);
    expect(logger.lines).toHaveLength(2);
    expect(logger.lines[1]!.fields.offered).toEqual([BACK, 'spiffe://sigil.local/other']);
    source.push([svid(BACK), svid(FRONT)]);
    await waiting;
    expect(offered).toBe(true);
    expect(logger.lines[2]).toEqual({
      level: 'info',
      msg: 'Configured spiffe_id offered',
      fields: { spiffeId: FRONT },
    });
    expect(source.listenerCount('update')).toBe(0);
  });

  it('resolves at once when the first context already holds the ID, logging nothing', async () => {
    const logger = recordingLogger();
    const choice = new SvidChoice(FRONT, logger);
    await choice.whenOffered(new FakeSource([svid(FRONT)]));
    expect(logger.lines).toEqual([]);
  });

  it('keeps the last SVID it held when the ID drops out, and takes the new one when it returns', () => {
    const logger = recordingLogger();
    const choice = new SvidChoice(FRONT, logger);
    const held = svid(FRONT, Date.UTC(2030, 0, 1));
    expect(choice.pick([held])).toBe(held);
    expect(choice.pick([svid(BACK)])).toBe(held);
    expect(choice.pick([svid(BACK)])).toBe(held);
    expect(logger.lines).toEqual([
      {
        level: 'warn',
        msg: 'Configured spiffe_id is no longer offered; keeping its last SVID until it expires',
        fields: { spiffeId: FRONT, offered: [BACK], keptUntil: '2030-01-01T00:00:00.000Z' },
      },
    ]);
    const rotated = svid(FRONT, Date.UTC(2030, 0, 2));
    expect(choice.pick([svid(BACK), rotated])).toBe(rotated);
    expect(logger.lines.at(-1)!.msg).toBe('Configured spiffe_id offered');
  });

  it('refuses with a typed error naming spiffe_id when nothing was ever held', () => {
    const choice = new SvidChoice(FRONT, recordingLogger());
    try {
      choice.pick([svid(BACK)]);
      expect.unreachable();
    } catch (err) {
      expect(isSigilError(err, 'ERR_UNAVAILABLE')).toBe(true);
      expect((err as { field?: string }).field).toBe('spiffe_id');
    }
  });
});
