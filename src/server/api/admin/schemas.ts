// JSON schemas for admin REST bodies. additionalProperties is false everywhere, so a typo in a field
// name is a 400 naming that field rather than a silently ignored value.
const duration = {
  anyOf: [
    { type: 'number', minimum: 0 },
    { type: 'string', maxLength: 32 },
  ],
} as const;
const selector = {
  anyOf: [
    { type: 'string', maxLength: 1100 },
    {
      type: 'object',
      additionalProperties: false,
      required: ['type', 'value'],
      properties: { type: { type: 'string' }, value: { type: 'string' } },
    },
  ],
} as const;

export const entryInputSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    id: { type: 'string', maxLength: 64 },
    spiffe_id: { type: 'string', maxLength: 2048 },
    parent_id: { type: 'string', maxLength: 2048 },
    node: { type: 'boolean' },
    selectors: { type: 'array', items: selector, maxItems: 64 },
    x509_svid_ttl: duration,
    jwt_svid_ttl: duration,
    dns_names: { type: 'array', items: { type: 'string', maxLength: 253 }, maxItems: 64 },
    federates_with: { type: 'array', items: { type: 'string', maxLength: 255 }, maxItems: 64 },
    admin: { type: 'boolean' },
    downstream: { type: 'boolean' },
    hint: { type: 'string' },
    expires_at: { anyOf: [{ type: 'integer', minimum: 0 }, { type: 'null' }] },
  },
} as const;

export const MAX_BATCH = 500;

export const entryView = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    spiffe_id: { type: 'string' },
    parent_id: { type: 'string' },
    selectors: {
      type: 'array',
      items: { type: 'object', properties: { type: { type: 'string' }, value: { type: 'string' } } },
    },
    x509_svid_ttl: { type: 'integer' },
    jwt_svid_ttl: { type: 'integer' },
    dns_names: { type: 'array', items: { type: 'string' } },
    federates_with: { type: 'array', items: { type: 'string' } },
    admin: { type: 'boolean' },
    downstream: { type: 'boolean' },
    hint: { type: 'string' },
    expires_at: { type: ['integer', 'null'] },
    revision: { type: 'integer' },
    created_at: { type: 'integer' },
  },
} as const;

export const errorView = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { code: { type: 'string' }, message: { type: 'string' }, field: { type: 'string' } },
    },
  },
} as const;

export const idParam = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', maxLength: 64 } },
} as const;

export const durationSchema = duration;

/** Routes without query parameters still declare so: an unknown parameter is a 400, never ignored. */
export const noQuery = { type: 'object', additionalProperties: false, properties: {} } as const;

/** The query parameters of every paginated list (parsePage reads them), for a route's own schema. */
export const pageProperties = { page_size: { type: 'string' }, page_token: { type: 'string' } } as const;

export const pageQuery = { type: 'object', additionalProperties: false, properties: pageProperties } as const;
