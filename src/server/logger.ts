// The server's pino logger. Secrets are redacted by path as a second line of defence: code never
// puts keys or tokens in log fields in the first place (tested).
import pino, { type DestinationStream, type Logger } from 'pino';

export const REDACTED_PATHS = [
  'key',
  '*.key',
  'privateKey',
  '*.privateKey',
  'key_pem',
  '*.key_pem',
  'token',
  '*.token',
  'joinToken',
  '*.joinToken',
  'authorization',
  'req.headers.authorization',
  'headers.authorization',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'sigil-server' },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
