import { describe, expect, it } from 'vitest';
import { fromStruct, toStruct, workloadServiceDefinition } from './workload-proto.js';

describe('google.protobuf.Struct claims', () => {
  it('survive a round trip through the proto serializer', () => {
    const claims = {
      sub: 'spiffe://example.org/web',
      aud: ['a', 'b'],
      exp: 1_700_000_000,
      ok: true,
      n: null,
      o: { k: 'v' },
    };
    const def = workloadServiceDefinition().ValidateJWTSVID;
    const bytes = def.responseSerialize({ spiffe_id: 'spiffe://example.org/web', claims: toStruct(claims) });
    expect(fromStruct(def.responseDeserialize(bytes).claims)).toEqual(claims);
  });
});
