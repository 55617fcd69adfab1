import type { DeliveryResult } from '../delivery/result.ts';
import type { ReceiptDelivery } from './receipt.ts';

const STATUS: Record<DeliveryResult['outcome'], ReceiptDelivery['status']> = {
  delivered: 'delivered',
  retry_scheduled: 'retrying',
  failed: 'dead',
  dropped: 'dropped',
  parked: 'parked',
};

/** A delivery result as the receipts of its events show it: status, attempt, HTTP status, error code and reason; no URL, no response body. */
export function deliveryOf(r: DeliveryResult, now: number): ReceiptDelivery {
  const d: ReceiptDelivery = { status: STATUS[r.outcome], at: now, attempt: r.attempt };
  if (r.status !== undefined) d.httpStatus = r.status;
  if (r.error !== undefined) d.code = r.error.code;
  if (r.reason !== undefined) d.reason = r.reason;
  return d;
}

/** A receipt's delivery to set after it was written: the final receipt of this event × destination. */
export interface DeliveryUpdate {
  messageId: string;
  destinationId: string;
  delivery: ReceiptDelivery;
}
