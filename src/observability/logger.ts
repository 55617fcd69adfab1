import { pino, type Logger, type DestinationStream } from 'pino';

/**
 * Structured JSON logs. Fields that can carry PII or secrets are censored by path, whatever the
 * caller passes: an event body, a vendor request, an API key. Log event ids, not events.
 */
export const REDACTED_PATHS = [
  'event.context',
  'event.properties',
  'event.traits',
  'event.userId',
  'event.anonymousId',
  '*.headers.authorization',
  '*.headers["x-api-key"]',
  '*.headers["x-admin-key"]',
  'req.headers.authorization',
  'req.headers.cookie',
  'request.url',
  'request.body',
  'settings',
  'apiKey',
  'adminKey',
  'accessToken',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'tagwarden' },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
