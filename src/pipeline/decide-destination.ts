import type { RequestSignals } from '../consent/signals.ts';
import type { ConsentState } from '../consent/state.ts';
import { tcfVerdict } from '../consent/tcf-verdict.ts';
import type { Event } from '../ingest/event.ts';
import { decide, type DataControlMode, type Decision } from '../policy/decide.ts';
import { dataControlFor, type Jurisdiction, type ModeChoice } from '../policy/jurisdiction.ts';
import type { RuntimeDestination } from './types.ts';

/**
 * Step "decide", for one destination: the consent step checks its TCF requirement against the
 * decoded string, then the pure policy decides from plain data.
 */
export function decideDestination(d: RuntimeDestination, event: Event, consent: ConsentState, mode: DataControlMode): Decision {
  return decide(event.integrations, consent, d.policy, mode, tcfVerdict(consent.tcf, d.policy.tcf));
}

/**
 * The hit's data control mode: the site's, or the one `site.jurisdiction` gives the region in the
 * hit's geo header (read at accept with the other signals, so a held or journaled hit keeps it).
 */
export function dataControlOf(site: { dataControlMode: DataControlMode; jurisdiction?: Jurisdiction | undefined }, signals: RequestSignals): ModeChoice {
  return dataControlFor(signals.region?.value, site.jurisdiction, site.dataControlMode);
}
