import type { Settler } from '../payouts/index.js';
import type { WebhookProvider } from '../webhooks/event.js';
import type { Metrics } from './metrics.js';

/**
 * The settler as the service hands it out, watched: a settlement that wrote a call credit counts once.
 * A repeated or raced settle of the same call writes nothing (`created: false`) and counts nothing.
 */
export function observeSettler(metrics: Metrics, settler: Settler): Settler {
  return {
    ...settler,
    async settle(input) {
      const result = await settler.settle(input);
      if (result.created && result.amountMicros > 0) metrics.ledgerCredits.inc();
      return result;
    },
  };
}

/** The webhook plugin's `onVerdict`: each provider request's signature check. */
export function webhookVerdicts(metrics: Metrics): (provider: WebhookProvider, result: 'verified' | 'rejected') => void {
  return (provider, result) => metrics.webhooks.inc({ provider, result });
}
