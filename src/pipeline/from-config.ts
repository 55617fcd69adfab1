import type { Config } from '../config/load.ts';
import { createConsentResolver, type ConsentResolver } from '../consent/resolve.ts';
import type { SignalReading } from '../consent/signals.ts';
import { compileSources } from '../identity/visitor.ts';

/**
 * The parts of a hit's reading and resolution that come straight from the config: the server
 * (src/app.ts) and `tagwarden explain` (src/cli/explain.ts) build them here, so both read and
 * resolve a hit alike.
 */

/** The consent resolver of the site's categories and TCF bounds. */
export function consentResolverOf(config: Config): ConsentResolver {
  return createConsentResolver({ categories: config.site.categories, tcf: config.consent.tcf, clockSkewMs: config.site.consentClockSkewMs });
}

/** What a hit's signals are read with: the visitor id sources, and the geo header of site.jurisdiction. */
export function signalReadingOf(config: Config): SignalReading {
  return { sources: compileSources(config.identity.visitorId), maxIdLength: config.identity.maxIdLength, regionHeader: config.site.jurisdiction?.header };
}
