// SPIFFE IDs and trust domains (spiffe-facts.md §1). Only the parsers make values, so a SpiffeId or
// TrustDomain you hold is valid; there is nothing to re-validate downstream.
import { quote, SigilError } from './errors.js';

const SCHEME_PREFIX = 'spiffe://';
/** RFC 3986 host limit; go-spiffe does not enforce it, we do. */
const MAX_TRUST_DOMAIN_BYTES = 255;
/** The spec requires accepting IDs up to 2048 bytes and generating none longer. */
const MAX_ID_BYTES = 2048;

export class TrustDomain {
  private constructor(readonly name: string) {}

  /** `spiffe://example.org`: the trust domain ID, used as map keys on the wire and in CA URI SANs. */
  get idString(): string {
    return `${SCHEME_PREFIX}${this.name}`;
  }

  equals(other: TrustDomain): boolean {
    return this.name === other.name;
  }

  toString(): string {
    return this.name;
  }

  toJSON(): string {
    return this.name;
  }

  /** @internal use parseTrustDomain */
  static fromValidated(name: string): TrustDomain {
    return new TrustDomain(name);
  }
}

export class SpiffeId {
  private constructor(
    readonly trustDomain: TrustDomain,
    /** Empty for the trust domain's own ID, otherwise begins with "/". */
    readonly path: string,
  ) {}

  get isTrustDomainId(): boolean {
    return this.path === '';
  }

  equals(other: SpiffeId): boolean {
    return this.trustDomain.name === other.trustDomain.name && this.path === other.path;
  }

  /** True when `other` is this ID or lies under it (`/ns/web` is under `/ns`, `/nsx` is not). */
  contains(other: SpiffeId): boolean {
    if (!this.trustDomain.equals(other.trustDomain)) return false;
    return other.path === this.path || other.path.startsWith(`${this.path}/`);
  }

  toString(): string {
    return `${SCHEME_PREFIX}${this.trustDomain.name}${this.path}`;
  }

  toJSON(): string {
    return this.toString();
  }

  /** @internal use parseSpiffeId / spiffeIdFromPath */
  static fromValidated(trustDomain: TrustDomain, path: string): SpiffeId {
    return new SpiffeId(trustDomain, path);
  }
}

/** Accepts a bare name (`example.org`) or a trust domain ID (`spiffe://example.org`). */
export function parseTrustDomain(input: string, field = 'trust_domain'): TrustDomain {
  if (typeof input !== 'string') throw tdError(input, field, 'must be a string', 'type');
  if (input.includes('://')) {
    let id: SpiffeId;
    try {
      id = parseSpiffeId(input, field);
    } catch (err) {
      // Same code whichever form was given: callers switch on it.
      if (!(err instanceof SigilError)) throw err;
      throw new SigilError('ERR_TRUST_DOMAIN_INVALID', err.message, {
        field,
        reason: err.reason,
        cause: err,
      });
    }
    if (!id.isTrustDomainId) {
      throw tdError(input, field, 'must not have a path (give the bare name, e.g. "example.org")', 'path');
    }
    return id.trustDomain;
  }
  checkTrustDomainName(input, input, field, 'ERR_TRUST_DOMAIN_INVALID');
  return TrustDomain.fromValidated(input);
}

export function parseSpiffeId(input: string, field = 'spiffe_id'): SpiffeId {
  if (typeof input !== 'string') throw idError(input, field, 'must be a string', 'type');
  if (input === '') throw idError(input, field, 'is empty', 'empty');
  if (Buffer.byteLength(input) > MAX_ID_BYTES) {
    throw idError(input, field, `is longer than ${MAX_ID_BYTES} bytes`, 'too-long');
  }
  if (!input.startsWith(SCHEME_PREFIX)) {
    throw idError(input, field, 'must start with "spiffe://" (lowercase scheme)', 'scheme');
  }
  const rest = input.slice(SCHEME_PREFIX.length);
  const slash = rest.indexOf('/');
  const tdName = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  checkTrustDomainName(tdName, input, field, 'ERR_SPIFFE_ID_INVALID');
  checkPath(path, input, field);
  return SpiffeId.fromValidated(TrustDomain.fromValidated(tdName), path);
}

/** Builds `spiffe://<td><path>` from a trust domain and a path such as `/ns/web`. */
export function spiffeIdFromPath(trustDomain: TrustDomain, path: string, field = 'path'): SpiffeId {
  checkPath(path, path, field);
  return SpiffeId.fromValidated(trustDomain, path);
}

/** Like parseSpiffeId, but also requires a non-root path, as a workload (leaf) SVID needs. */
export function parseWorkloadSpiffeId(input: string, field = 'spiffe_id'): SpiffeId {
  const id = parseSpiffeId(input, field);
  if (id.isTrustDomainId) {
    throw idError(input, field, 'must have a path (a trust domain ID cannot name a workload)', 'no-path');
  }
  return id;
}

function checkTrustDomainName(
  name: string,
  input: string,
  field: string,
  code: 'ERR_SPIFFE_ID_INVALID' | 'ERR_TRUST_DOMAIN_INVALID',
): void {
  const fail = (rule: string, reason: string) =>
    code === 'ERR_SPIFFE_ID_INVALID'
      ? idError(input, field, rule, reason)
      : tdError(input, field, rule, reason);
  if (name === '') throw fail('is missing a trust domain', 'trust-domain-missing');
  if (name.length > MAX_TRUST_DOMAIN_BYTES) {
    throw fail(`has a trust domain longer than ${MAX_TRUST_DOMAIN_BYTES} bytes`, 'trust-domain-too-long');
  }
  for (let i = 0; i < name.length; i++) {
    if (!isTrustDomainChar(name.charCodeAt(i))) {
      throw fail(
        `trust domain may contain only lowercase letters, digits, ".", "-" and "_" (found ${quote(name[i])})`,
        'trust-domain-char',
      );
    }
  }
}

function checkPath(path: string, input: string, field: string): void {
  if (path === '') return;
  if (!path.startsWith('/')) throw idError(input, field, 'path must begin with "/"', 'path-leading-slash');
  const segments = path.slice(1).split('/');
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    if (segment === '') {
      const rule =
        i === segments.length - 1
          ? 'path must not end with "/"'
          : 'path must not contain empty segments ("//")';
      throw idError(
        input,
        field,
        rule,
        i === segments.length - 1 ? 'path-trailing-slash' : 'path-empty-segment',
      );
    }
    if (segment === '.' || segment === '..') {
      throw idError(input, field, 'path must not contain "." or ".." segments', 'path-dot-segment');
    }
    for (let j = 0; j < segment.length; j++) {
      if (!isPathChar(segment.charCodeAt(j))) {
        throw idError(
          input,
          field,
          `path may contain only letters, digits, ".", "-" and "_" (found ${quote(segment[j])})`,
          'path-char',
        );
      }
    }
  }
}

function isTrustDomainChar(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 46 || c === 45 || c === 95;
}

function isPathChar(c: number): boolean {
  return isTrustDomainChar(c) || (c >= 65 && c <= 90);
}

function idError(input: unknown, field: string, rule: string, reason: string): SigilError {
  return new SigilError('ERR_SPIFFE_ID_INVALID', `${field}: SPIFFE ID ${quote(input)} ${rule}`, {
    field,
    reason,
  });
}

function tdError(input: unknown, field: string, rule: string, reason: string): SigilError {
  return new SigilError('ERR_TRUST_DOMAIN_INVALID', `${field}: trust domain ${quote(input)} ${rule}`, {
    field,
    reason,
  });
}
