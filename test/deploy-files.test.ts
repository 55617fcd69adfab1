import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import type { Config } from '../src/config/load.ts';
import { loadConfigWithTemplates } from '../src/destinations/load-config.ts';

/**
 * The deployment examples (deploy/, docs/deployment.md) a user copies: they parse, the Tagwarden
 * config each carries is valid (unknown keys are errors: a renamed key fails here), every `${VAR}`
 * it needs is set by the container's environment, and ports, probes, the config path and the
 * grace periods agree with that config. Issue 16.
 */
const DEPLOY = fileURLToPath(new URL('../deploy/', import.meta.url));
const read = (path: string): string => readFileSync(join(DEPLOY, path), 'utf8');

/** A value each variable could have, so the config validates as it would in the container. */
const PLACEHOLDERS: Record<string, string> = {
  TAGWARDEN_STORE_URL: 'postgres://tagwarden:tagwarden@postgres:5432/tagwarden',
  TAGWARDEN_ADMIN_KEY: 'a-placeholder-admin-key-0123456789',
};

/** The `${VAR}` references of a config text that have no default: the environment must set them. */
function requiredVars(text: string): string[] {
  return [...new Set([...text.matchAll(/\$\{([A-Z0-9_]+)\}/g)].map((m) => m[1]!))];
}

/** Validates a config text as the server would start it, with `env` (names set by the container). */
function validConfig(text: string, envNames: readonly string[]): Config {
  for (const v of requiredVars(text)) expect(envNames, `the container sets ${v}`).toContain(v);
  const dir = mkdtempSync(join(tmpdir(), 'tw-deploy-'));
  try {
    const file = join(dir, 'tagwarden.yaml');
    writeFileSync(file, text);
    const env = Object.fromEntries(envNames.map((n) => [n, PLACEHOLDERS[n] ?? '']));
    return loadConfigWithTemplates(file, env).config;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Compose durations as this file writes them (`15s`, `1m30s`), in ms. */
function durationMs(text: string): number {
  const m = /^(?:(\d+)m)?(?:(\d+)s)?$/.exec(text);
  if (m === null || (m[1] === undefined && m[2] === undefined)) throw new Error(`unreadable duration ${text}`);
  return (Number(m[1] ?? 0) * 60 + Number(m[2] ?? 0)) * 1000;
}

interface ComposeService {
  environment?: Record<string, string>;
  volumes?: string[];
  expose?: string[];
  ports?: string[];
  stop_grace_period?: string;
  depends_on?: unknown;
}

describe('deploy/compose: two instances, PostgreSQL and nginx', () => {
  const compose = parseYaml(read('compose/docker-compose.yml'), { maxAliasCount: 100 }) as { services: Record<string, ComposeService> };
  const instances = Object.entries(compose.services).filter(([name]) => name.startsWith('tagwarden-'));

  it('runs two Tagwarden instances, each with the mounted config, which is valid with their environment', () => {
    expect(instances.map(([name]) => name)).toEqual(['tagwarden-1', 'tagwarden-2']);
    for (const [name, s] of instances) {
      const env = s.environment ?? {};
      const mount = (s.volumes ?? []).map((v) => v.split(':')).find(([, target]) => target === env.TAGWARDEN_CONFIG);
      expect(mount, `${name} mounts its TAGWARDEN_CONFIG`).toBeDefined();
      const config = validConfig(read(join('compose', mount![0]!)), Object.keys(env));
      expect(config.store.url).toMatch(/^postgres/);
      expect(config.delivery.journal.enabled).toBe(true);
      // Two instances: the limits are the fleet's, not twice the plan.
      expect(config.api.rateLimit.scope).toBe('fleet');
      // Its port is the one it exposes, and SIGTERM leaves it the grace it flushes within.
      expect(s.expose).toEqual([String(config.server.port)]);
      expect(durationMs(s.stop_grace_period ?? '10s')).toBeGreaterThan(config.server.shutdownGraceMs);
    }
  });

  it('nginx sends to both instances on their port and forwards one hop, as the config trusts', () => {
    const config = validConfig(read('compose/tagwarden.yaml'), Object.keys(instances[0]![1].environment ?? {}));
    const nginx = read('compose/nginx.conf');
    const upstreams = [...nginx.matchAll(/^\s*server ([\w-]+):(\d+)/gm)].map((m) => [m[1], Number(m[2])]);
    expect(upstreams).toEqual(instances.map(([name]) => [name, config.server.port]));
    expect(config.server.trustProxyHops).toBe(1);
    expect(nginx).toMatch(/proxy_set_header X-Forwarded-For \$remote_addr;/);
    // nginx lets through the largest body Tagwarden accepts.
    const limit = /client_max_body_size (\d+)m;/.exec(nginx);
    expect(Number(limit?.[1]) * 1024 * 1024).toBeGreaterThanOrEqual(config.server.maxBatchBytes);
    expect(compose.services.nginx?.volumes).toContain('./nginx.conf:/etc/nginx/nginx.conf:ro');
    // A stopping instance's 503 (nothing taken) sends the hit, a POST, to the other instance.
    expect(nginx).toMatch(/proxy_next_upstream [^;]*\bhttp_503\b[^;]*\bnon_idempotent\b/);
  });
});

interface K8sDoc {
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  data?: Record<string, string>;
  spec?: any;
}

describe('deploy/kubernetes: Deployment, Service, PodDisruptionBudget, HPA', () => {
  const docs = parseAllDocuments(read('kubernetes/tagwarden.yaml')).map((d) => {
    expect(d.errors).toEqual([]);
    return d.toJS() as K8sDoc;
  });
  const byKind = (kind: string): K8sDoc => {
    const found = docs.find((d) => d.kind === kind);
    if (found === undefined) throw new Error(`no ${kind}`);
    return found;
  };
  const deployment = byKind('Deployment');
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0];
  const envNames: string[] = container.env.map((e: { name: string }) => e.name);
  const configMap = byKind('ConfigMap');
  const config = validConfig(configMap.data!['tagwarden.yaml']!, envNames);

  it('the ConfigMap holds a valid config, mounted where TAGWARDEN_CONFIG points', () => {
    const configPath = container.env.find((e: { name: string }) => e.name === 'TAGWARDEN_CONFIG').value as string;
    const volume = pod.volumes.find((v: { configMap?: { name: string } }) => v.configMap?.name === configMap.metadata.name);
    const mount = container.volumeMounts.find((m: { name: string }) => m.name === volume.name);
    expect(configPath).toBe(`${mount.mountPath as string}/tagwarden.yaml`);
    expect(config.delivery.journal.enabled).toBe(true);
    expect(config.api.rateLimit.scope).toBe('fleet');
  });

  it('ports and probes: the config port, /readyz for readiness and /healthz for liveness', () => {
    expect(container.ports).toEqual([{ name: 'http', containerPort: config.server.port }]);
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(byKind('Service').spec.ports[0].targetPort).toBe('http');
  });

  it('terminationGracePeriodSeconds covers the preStop pause and server.shutdownGraceMs', () => {
    const preStop = Number(container.lifecycle.preStop.exec.command[1]);
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(config.server.shutdownGraceMs + preStop * 1000);
  });

  it('the PodDisruptionBudget and the HPA name this Deployment; more than one replica', () => {
    const labels = deployment.spec.template.metadata.labels as Record<string, string>;
    expect(deployment.spec.selector.matchLabels).toEqual(labels);
    expect(byKind('PodDisruptionBudget').spec.selector.matchLabels).toEqual(labels);
    expect(byKind('Service').spec.selector).toEqual(labels);
    const hpa = byKind('HorizontalPodAutoscaler').spec;
    expect(hpa.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata.name });
    expect(hpa.minReplicas).toBeGreaterThanOrEqual(2);
    expect(hpa.metrics[0].resource.name).toBe('cpu');
    expect(deployment.spec.replicas).toBeGreaterThanOrEqual(byKind('PodDisruptionBudget').spec.minAvailable + 1);
  });
});
