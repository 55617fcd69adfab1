import type { Config } from '../../config/load.ts';
import type { Resolution, TemplateCatalog } from '../../destinations/resolve.ts';
import { maskUrlCredentials, secretMasker } from '../../lib/mask-secrets.ts';

/** What the dashboard shows for a secret setting: that it is set, never any of it. */
export const SECRET_MASK = '••••';

export interface DestinationView {
  id: string;
  template: string;
  templateVersion: number | undefined;
  /** Running in this instance (false: `enabled: false`, or `if-configured` with settings missing). */
  enabled: boolean;
  /** Why it is not running, when it is not. */
  disabledReason?: string;
  dryRun: boolean;
  categories: string[];
  /** The site's settings: those the template marks `secret` (and any it does not declare) as SECRET_MASK; secrets inside the others masked too. */
  settings: Record<string, string | number | boolean>;
  /** An endpoint override, origin and path only (its query or user info may hold a credential). */
  endpoint?: string;
}

/** Every configured destination as GET /ui/api/destinations shows it (docs/ui.md). Computed once at startup: the config is frozen. */
export function destinationViews(config: Config, templates: TemplateCatalog, resolution: Resolution): DestinationView[] {
  const running = new Map(resolution.destinations.map((d) => [d.config.id, d]));
  const disabled = new Map(resolution.disabled.map((d) => [d.id, d.reason]));
  return config.destinations.map((d) => {
    const template = templates.get(d.template);
    const declared = template?.definition.settings ?? {};
    const isSecret = (name: string): boolean => !Object.hasOwn(declared, name) || declared[name]!.secret === true;
    const secrets = Object.entries(d.settings)
      .filter(([name]) => isSecret(name))
      .map(([, v]) => String(v));
    const mask = secretMasker(secrets);
    const settings: DestinationView['settings'] = {};
    for (const [name, value] of Object.entries(d.settings)) {
      settings[name] = isSecret(name) ? SECRET_MASK : typeof value === 'string' ? maskUrlCredentials(mask(value)) : value;
    }
    const r = running.get(d.id);
    const view: DestinationView = {
      id: d.id,
      template: d.template,
      templateVersion: template?.version,
      enabled: r !== undefined,
      dryRun: d.dryRun,
      categories: [...(r?.policy.categories ?? d.consent?.categories ?? template?.consent?.categories ?? [])],
      settings,
    };
    const why = disabled.get(d.id);
    if (why !== undefined) view.disabledReason = why;
    if (d.endpoint !== undefined) {
      const u = new URL(d.endpoint);
      view.endpoint = `${u.origin}${u.pathname}`;
    }
    return view;
  });
}
