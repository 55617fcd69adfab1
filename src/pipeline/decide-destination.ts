import type { ConsentState } from '../consent/state.ts';
import { tcfVerdict } from '../consent/tcf-verdict.ts';
import type { Event } from '../ingest/event.ts';
import { decide, type DataControlMode, type Decision } from '../policy/decide.ts';
import type { RuntimeDestination } from './types.ts';

/**
 * Step "decide", for one destination: the consent step checks its TCF requirement against the
 * decoded string, then the pure policy decides from plain data.
 */
export function decideDestination(d: RuntimeDestination, event: Event, consent: ConsentState, mode: DataControlMode): Decision {
  return decide(event.integrations, consent, d.policy, mode, tcfVerdict(consent.tcf, d.policy.tcf));
}
