// Local rate limiting of inbound listeners: token buckets per listener and per caller SPIFFE ID.

export { refuseUpgradeRateLimited, respondRateLimited, respondStreamRateLimited } from './answer.js';
export { checkRateLimit } from './config.js';
export type { RateLimitGate } from './enforce.js';
export { createRateLimitGate } from './enforce.js';
export type { RateLimitConfig, RateLimitKind, RateLimitOverride, RateLimitRefusal } from './limiter.js';
export type { RequestRate } from './token-bucket.js';
