// The logging surface the proxy uses: the pino methods it calls, so tests can pass a recorder and
// main.ts a pino child logger ({ component: 'proxy' }).
export interface ProxyLogger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}
