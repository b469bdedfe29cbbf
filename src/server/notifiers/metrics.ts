// Bundle notifier metrics, on the server's registry: a failing publish shows as a rising failure
// count while the server itself stays healthy (agents keep the bundle they have).
import { Counter, type Registry } from 'prom-client';

export interface NotifierMetrics {
  readonly publishes: Counter<'notifier' | 'result'>;
}

export function createNotifierMetrics(registry: Registry): NotifierMetrics {
  return {
    publishes: new Counter({
      name: 'sigil_server_bundle_notifier_publishes_total',
      help: 'Trust bundle publish attempts by notifier and result (success, failure)',
      labelNames: ['notifier', 'result'],
      registers: [registry],
    }),
  };
}
