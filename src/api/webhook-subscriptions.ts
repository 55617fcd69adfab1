import { ValidationError } from '../errors.ts';
import type { Db, Queryable } from '../store/db.ts';
import { insertSubscription, type NewSubscription, type SubscriptionOptions } from '../store/webhooks.ts';
import { assertWebhookUrl, type UrlGuardOptions } from './url-guard.ts';
import { generateWebhookSecret } from './webhook-sign.ts';

export interface CreateSubscriptionOptions extends SubscriptionOptions {
  /** The URL guard's configuration (allowPrivate, allowHosts). */
  guard?: UrlGuardOptions;
}

/**
 * Creates a webhook subscription: the URL guard checks the URL (the worker checks the resolved
 * address again at every send), a new signing secret is made, and the store records both. The
 * secret is returned here only: the receiver verifies signatures with it.
 */
export async function createSubscription(db: Db | Queryable, sub: NewSubscription, opts: CreateSubscriptionOptions = {}): Promise<{ id: string; secret: string }> {
  if (typeof sub.url !== 'string') throw new ValidationError('url: required', { details: { issues: [{ path: 'url', message: 'required' }] } });
  const url = assertWebhookUrl(sub.url, opts.guard);
  const secret = generateWebhookSecret();
  const { id } = await insertSubscription(db, { ...sub, url: url.href, secret }, opts);
  return { id, secret };
}
