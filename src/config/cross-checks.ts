import type { ConfigIssue } from './issues.ts';

/**
 * Rules that span several fields of the config: unique destination ids, every category named
 * anywhere defined in `site.categories`, `debug.adminKey` when explain or the dashboard is asked
 * for. They read the raw (env-expanded) config, not the schema's output, so they run even when the
 * schema refused something elsewhere: every problem is reported at once. A rule whose fields are
 * themselves malformed is skipped (the schema reports those).
 */
export function crossFieldIssues(raw: unknown): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (!isRecord(raw)) return issues;
  const site = raw.site === undefined ? {} : raw.site;
  const rawCategories = isRecord(site) ? (site.categories ?? {}) : undefined;
  // Without a readable categories map there is nothing to check category names against.
  const categories = isRecord(rawCategories) ? new Set(Object.keys(rawCategories)) : undefined;
  const known = categories === undefined ? '' : [...categories].join(', ') || 'none';
  const unknown = (c: unknown): c is string => categories !== undefined && typeof c === 'string' && !categories.has(c);
  const unknownMessage = (c: string) => `unknown category "${c}" (site.categories has: ${known})`;

  if (Array.isArray(raw.destinations)) {
    const seen = new Map<string, number>();
    raw.destinations.forEach((d: unknown, i) => {
      if (!isRecord(d)) return;
      if (typeof d.id === 'string') {
        const prev = seen.get(d.id);
        if (prev !== undefined) issues.push({ path: ['destinations', i, 'id'], message: `duplicate destination id (also destinations[${prev}])` });
        else seen.set(d.id, i);
      }
      const wanted = isRecord(d.consent) ? d.consent.categories : undefined;
      if (Array.isArray(wanted)) {
        wanted.forEach((c: unknown, j) => {
          if (unknown(c)) issues.push({ path: ['destinations', i, 'consent', 'categories', j], message: unknownMessage(c) });
        });
      }
    });
  }

  // The two verify category maps (name → site category): the upstream's answers, and the verify API's.
  for (const part of ['upstream', 'api'] as const) {
    const section = raw[part];
    const map = isRecord(section) && isRecord(section.verify) ? section.verify.categories : undefined;
    if (!isRecord(map)) continue;
    for (const [name, c] of Object.entries(map)) {
      if (unknown(c)) issues.push({ path: [part, 'verify', 'categories', name], message: unknownMessage(c) });
    }
  }

  const identity = isRecord(raw.identity) ? raw.identity : {};
  const cookie = isRecord(identity.cookie) ? identity.cookie : {};
  // `functional` is the schema's default for identity.cookie.category.
  const cookieCategory = cookie.category ?? 'functional';
  if (cookie.enabled === true && unknown(cookieCategory)) issues.push({ path: ['identity', 'cookie', 'category'], message: unknownMessage(cookieCategory) });

  const debug = isRecord(raw.debug) ? raw.debug : {};
  if (debug.explain === true && debug.adminKey === undefined) issues.push({ path: ['debug', 'adminKey'], message: 'required when debug.explain is true' });
  // The dashboard is on by default and quietly off without a key (logged at startup); asking for it
  // by name without one is a mistake worth refusing.
  const ui = isRecord(raw.ui) ? raw.ui : {};
  if (ui.enabled === true && debug.adminKey === undefined) issues.push({ path: ['debug', 'adminKey'], message: 'required when ui.enabled is true (the dashboard\'s login key)' });
  // Workers share the store; an in-memory SQLite database would be one private database per worker
  // (consent written through one unknown to the others, each journal alone).
  const server = raw.server;
  const store = raw.store;
  const workers = isRecord(server) ? server.workers : undefined;
  if ((workers === 'auto' || (typeof workers === 'number' && workers > 1)) && isRecord(store) && store.url === 'sqlite::memory:') {
    issues.push({ path: ['store', 'url'], message: 'sqlite::memory: is one private database per process: with server.workers above 1 use a file (sqlite:./data/tagwarden.db) or PostgreSQL' });
  }
  return issues;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
