import { z } from 'zod';

/**
 * The configuration file's schema. Every field carries a description: it becomes the JSON Schema
 * (`npm run schema` → config/tagwarden.schema.json) that editors use for completion, and the
 * reference in docs/configuration.md. Every object is strict: an unknown key is an error, because
 * a misspelt `whenUnknwon` silently falling back to a default is how consent gets bypassed.
 */

const categoryId = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/, 'a category id is a letter followed by up to 63 letters, digits, _ or -')
  .describe('A consent category id of this site.');

const destinationId = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,63}$/, 'a destination id is a lowercase letter followed by up to 63 lowercase letters, digits, _ or -')
  .describe('Stable id of this destination (used in metrics, reasons and the integrations object).');

export const whenUnknownSchema = z
  .enum(['drop', 'hold', 'redact'])
  .describe(
    'What to do with an event when consent for a required category is unknown (opt-in mode): drop it, hold it until consent is known, or send a redacted version (the template must define a `consent_unknown` redaction; if it does not, the event is dropped).',
  );

const tcfPurpose = z.int().min(1).max(11).describe('A TCF purpose id (1-11, IAB TCF v2.2 policy).');

const tcfRequirementSchema = z
  .object({
    vendorId: z.int().min(1).max(65_535).optional().describe('The vendor\'s id in the IAB Global Vendor List (https://iabeurope.eu/vendor-list-tcf/). Absent: no vendor check.'),
    basis: z
      .enum(['consent', 'legitimateInterest', 'either'])
      .default('consent')
      .describe('Legal basis that must be signalled for the vendor and each purpose. Purpose 1 always needs consent.'),
    purposes: z.array(tcfPurpose).max(11).default([]).describe('TCF purposes this destination needs.'),
  })
  .strict()
  .describe(
    'A TCF requirement, checked when TCF applies to the hit (`gdpr=1`, or a TCF string is present): a missing or invalid string then denies. Reasons: `tcf_vendor_not_consented:<id>`, `tcf_purpose_not_consented:<id>`, `tcf_invalid:<why>`.',
  );

export const consentRequirementSchema = z
  .object({
    categories: z
      .array(categoryId)
      .max(32)
      .optional()
      .describe('Site categories this destination needs. Empty or absent: not gated by category (still by the integrations object).'),
    combine: z
      .enum(['all', 'any'])
      .optional()
      .describe('`all`: every listed category must be granted (Segment semantics). `any`: one granted category is enough.'),
    whenUnknown: whenUnknownSchema.optional(),
    whenGpc: z
      .enum(['drop', 'limitedDataUse'])
      .optional()
      .describe(
        "What a Global Privacy Control opt-out (`Sec-GPC: 1`) of this destination's sale/share categories does. `drop` (default): nothing is sent. `limitedDataUse`: the event is sent reshaped by the template's `limited_data_use` rule (Meta's LDU, TikTok's `limited_data_use`, Google's ad personalisation off), the vendors' own mechanism for processing under a US opt-out; a template without the rule drops. Only when GPC is the sole denial.",
      ),
    tcf: tcfRequirementSchema.optional(),
  })
  .strict()
  .describe('Consent this destination requires. Fields left out come from the template defaults, then `all` / `drop`.');

const categorySchema = z
  .object({
    description: z.string().max(500).optional().describe('What this category covers, for people reading the config.'),
    aliases: z
      .array(z.string().min(1).max(128))
      .max(16)
      .optional()
      .describe(
        'Other keys that mean this category in a Segment consent object (`context.consent.categoryPreferences`), e.g. a CMP id such as `C0004`. Matched exactly.',
      ),
    saleOrShare: z
      .boolean()
      .default(false)
      .describe('Sale or sharing of personal data (CCPA/CPRA): a `Sec-GPC: 1` header denies this category whatever else says granted (reason `gpc_opt_out`).'),
    tcf: z
      .object({ purposes: z.array(tcfPurpose).min(1).max(11).describe('Purposes that must all have consent in a valid TCF string for the category to be granted.') })
      .strict()
      .optional()
      .describe('How a TCF string maps onto this category. Absent: TCF says nothing about it.'),
    gcm: z
      .array(z.enum(['ad_storage', 'analytics_storage', 'ad_user_data', 'ad_personalization']))
      .min(1)
      .max(4)
      .optional()
      .describe('Google Consent Mode signals (from gcs/gcd) that must all be granted for this category; any denied denies it. Absent: Consent Mode says nothing about it.'),
  })
  .strict();

const idSourceSchema = z
  .union([
    z.object({ cookie: z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/, 'a cookie name (RFC 6265 token)') }).strict(),
    z.object({ query: z.string().min(1).max(128) }).strict(),
    z.object({ body: z.string().regex(/^[A-Za-z0-9_$-]{1,64}(?:\.[A-Za-z0-9_$-]{1,64}){0,7}$/, 'a dotted path of the payload, e.g. anonymousId or context.traits.vid') }).strict(),
    z.object({ header: z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/, 'a header name') }).strict(),
  ])
  .describe('One place to read the visitor id from: `{cookie: name}`, `{query: name}`, `{body: dotted.path}` or `{header: name}`.');

const modeSchema = z.enum(['disabled', 'opt-out', 'opt-in']);

/**
 * `site.jurisdiction` (DESIGN.md "Data control mode"): the mode per visitor region. The group names
 * are src/policy/jurisdiction.ts's REGION_GROUPS (a test keeps the two lists equal); a country key
 * is an ISO 3166-1 alpha-2 code that names a country (not XX, ZZ, AA, QM–QZ, XA–XZ, AP, nor EL: a
 * header saying EL reads as GR).
 */
const jurisdictionSchema = z
  .object({
    header: z
      .string()
      // Lower case: the name is looked up as Node gives it to the routes.
      .regex(/^[!#$%&'*+.^_`|~0-9a-z-]{1,128}$/, 'a header name in lower case, e.g. cf-ipcountry')
      .default('cf-ipcountry')
      .describe(
        'The header (lower case) carrying the visitor\'s country (ISO 3166-1 alpha-2), set by the CDN in front of Tagwarden: `cf-ipcountry` (Cloudflare), `cloudfront-viewer-country` (CloudFront), `x-vercel-ip-country` (Vercel), `x-appengine-country`, `fastly-geo-country`… Trust it only when the CDN sets it on every request (overwriting what a client sent). A value that is not two letters naming a country (`XX`, `T1`, missing) is no region.',
      ),
    modes: z
      .record(
        z.string().regex(/^(?:EU|EEA|UK|(?!AA|ZZ|AP|EL|X[A-Z]|Q[M-Z])[A-Z]{2})$/),
        modeSchema,
        { error: (issue) => (issue.code === 'invalid_key' ? 'not a region: an ISO 3166-1 alpha-2 code naming a country, in capitals (e.g. DE, US), or a group: EU, EEA, UK' : undefined) },
      )
      .default({})
      .describe(
        'Country code or group → data control mode, e.g. {EU: opt-in, EEA: opt-in, UK: opt-in, US: opt-out}. Groups: `EU` (the 27 member states), `EEA` (EU + IS, LI, NO), `UK` (GB). A country\'s own key beats a group; of two groups, the smaller (EU before EEA). Regions not listed, and hits with no valid region, get `site.dataControlMode`. `Sec-GPC: 1` binds in opt-in and opt-out; `disabled` gates nothing (seed seeka-server-side-consent.txt: destinations always receive events).',
      ),
  })
  .strict()
  .describe('The data control mode per visitor region, read from a geo header the CDN sets. Absent: `site.dataControlMode` for every hit.');
const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/, 'a header name');

/**
 * SecurePrivacy's Universal Consent API (seed secureprivacy-universal-consent-api.txt) under
 * /api/universalconsent: its integration routes are unauthenticated, keyed by the ids listed here.
 */
const secureprivacySchema = z
  .object({
    enabled: z.boolean().default(true).describe('Serve the SecurePrivacy-compatible routes under /api/universalconsent (with `api.enabled`). The integration routes answer only for the `integrations` listed.'),
    integrations: z
      .array(
        z
          .object({
            id: z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, '1-128 letters, digits, _ or -').describe('The IntegrationId of `/api/universalconsent/integration/:IntegrationId`: anyone who knows it may record consent for this integration, without a key.'),
            reference: z.string().min(1).max(512).describe('The integration name: the Reference its consents are recorded under and answered with.'),
            mapCategories: z
              .boolean()
              .default(false)
              .describe('Also set the site categories from ConsentGiven (`consentGiven`). Default false: an unauthenticated route changes only its own reference, never what hits may forward.'),
          })
          .strict(),
      )
      .max(100)
      .default([])
      .superRefine((list, ctx) => {
        const seen = new Set<string>();
        list.forEach((i, at) => {
          if (seen.has(i.id)) ctx.addIssue({ code: 'custom', path: [at, 'id'], message: `integration id ${i.id} appears twice` });
          seen.add(i.id);
        });
      })
      .describe('Integrations allowed to record consent without authentication. Empty: every IntegrationId answers 404.'),
    mapCategories: z.boolean().default(true).describe('Authenticated routes: also set the site categories from ConsentGiven (`consentGiven`), besides the reference itself.'),
    consentGiven: z
      .object({
        All: z.array(categoryId).max(64).optional().describe('Categories All grants (the others are denied). Absent: every site category.'),
        Partial: z
          .array(categoryId)
          .max(64)
          .optional()
          .describe('Categories Partial grants (the others are denied). Absent: `necessary` and `functional`, those of them the site defines.'),
        None: z.array(categoryId).max(64).default([]).describe('Categories None grants (the others are denied). Default: none.'),
      })
      .strict()
      .prefault({})
      .describe('How SecurePrivacy\'s ConsentGiven (All, Partial, None) maps onto the site categories. Every name listed must be a site category.'),
    geoHeaders: z
      .object({
        city: headerName.optional().describe('Header with the client\'s city, e.g. cf-ipcity.'),
        state: headerName.optional().describe('Header with the client\'s region or state, e.g. cf-region.'),
        country: headerName.optional().describe('Header with the client\'s country code, e.g. cf-ipcountry.'),
      })
      .strict()
      .prefault({})
      .describe('Where the fingerprint\'s City, State and Country come from. Set only headers a proxy in front of Tagwarden sets (and strips from clients): anyone can send any header. Absent: not recorded.'),
    integrationRateLimit: z
      .object({
        perSecond: z.number().positive().max(100_000).default(5).describe('Sustained integration requests per second per client address (each instance counts its own: these routes are unauthenticated, and a store write per request would be the load the limit is there to stop).'),
        burst: z.int().min(1).max(100_000).default(20).describe('Integration requests a client address may send at once.'),
      })
      .strict()
      .prefault({})
      .describe('Rate limit of the unauthenticated integration routes, per client address (server.trustProxyHops): beyond it, 429 with Retry-After.'),
  })
  .strict()
  .prefault({})
  .describe('SecurePrivacy-compatible Universal Consent routes (docs/consent-api.md, "SecurePrivacy").');

/** destinations[].maxInFlight when neither the destination nor its template sets it. */
export const DEFAULT_MAX_IN_FLIGHT = 16;

export const destinationSchema = z
  .object({
    id: destinationId,
    template: z.string().min(1).max(64).describe('Template id: a folder under the templates directory (meta-capi, ga4, webhook, ...).'),
    enabled: z
      .union([z.boolean(), z.literal('if-configured')])
      .default(true)
      .describe(
        '`true`: on (missing required settings are a config error). `false`: off. `if-configured`: on only when every required setting has a non-empty value, otherwise off with a start-up log line — for destinations waiting for credentials.',
      ),
    dryRun: z
      .boolean()
      .default(false)
      .describe('Decide and render as usual, but log the vendor request (secrets masked) instead of sending it.'),
    settings: z
      .record(z.string(), z.union([z.string(), z.number(), z.boolean()]))
      .default({})
      .describe('Template settings (credentials, ids). Use ${ENV_VAR} references for secrets.'),
    consent: consentRequirementSchema.optional(),
    integrationNames: z
      .array(z.string().min(1).max(128))
      .max(16)
      .optional()
      .describe(
        'Keys of the Segment `integrations` object that address this destination besides its id, e.g. `Facebook Conversions API`.',
      ),
    endpoint: z
      .url({ protocol: /^https?$/ })
      .optional()
      .describe('Replaces the vendor URL (origin and path; the rendered query string is kept). For tests and staging.'),
    timeoutMs: z.int().min(100).max(120_000).default(10_000).describe('Timeout of one vendor request.'),
    truncateIp: z
      .boolean()
      .default(false)
      .describe('Send this destination the visitor\'s IP truncated (IPv4 to /24, IPv6 to /48) instead of the full address.'),
    maxInFlight: z
      .int()
      .min(1)
      .max(256)
      .optional()
      .describe(
        `Most concurrent requests to this destination. Default: the template's \`request.maxInFlight\` (the shipped \`ga4\` and \`ga4-collect\`: 128, since GA4 takes one client per request), else ${DEFAULT_MAX_IN_FLIGHT}. Throughput is at most maxInFlight / the vendor's answer time; keep \`delivery.connectionsPerOrigin\` at least as large.`,
      ),
  })
  .strict();

export const configSchema = z
  .object({
    server: z
      .object({
        host: z.string().default('0.0.0.0').describe('Interface to listen on.'),
        port: z.int().min(0).max(65535).default(8080).describe('TCP port to listen on (0 picks a free one). The `PORT` environment variable, when set, wins (Cloud Run, Heroku and most platforms set it).'),
        trustProxyHops: z
          .int()
          .min(0)
          .max(10)
          .default(0)
          .describe('Number of reverse proxies in front of Tagwarden whose X-Forwarded-For entries are trusted for the client IP.'),
        headersTimeoutMs: z.int().min(1000).max(120_000).default(10_000).describe('Time allowed to receive the request headers.'),
        requestTimeoutMs: z.int().min(1000).max(300_000).default(30_000).describe('Time allowed to receive a whole request.'),
        keepAliveTimeoutMs: z.int().min(1000).max(120_000).default(5_000).describe('Idle time before a keep-alive connection is closed.'),
        maxHeaderBytes: z.int().min(1024).max(65_536).default(16_384).describe('Largest request header block accepted (431 beyond it).'),
        maxEventBytes: z.int().min(1024).max(1_048_576).default(32_768).describe('Largest body of a single-event route (/v1/track, ...; 413 beyond it).'),
        maxBatchBytes: z.int().min(1024).max(4_194_304).default(512_000).describe('Largest body of /v1/batch (413 beyond it).'),
        maxBatchEvents: z.int().min(1).max(1000).default(100).describe('Most events accepted in one /v1/batch request.'),
        allowedHosts: z
          .array(z.string().min(1).max(253))
          .max(100)
          .default([])
          .describe('Host names this server answers for (e.g. [tags.example.com]); other Host headers get 421. Empty: any host. /healthz, /readyz and /metrics answer any host (probes use pod addresses).'),
        allowedOrigins: z
          .array(z.string().min(1).max(256))
          .max(100)
          .default(['*'])
          .describe('Origins allowed to post hits from a browser (CORS); `*` allows any. E.g. [https://www.example.com].'),
        shutdownGraceMs: z
          .int()
          .min(0)
          .max(120_000)
          .default(10_000)
          .describe('On SIGTERM/SIGINT: time allowed to finish requests and flush pending deliveries before exiting.'),
        workers: z
          .union([z.int().min(1).max(64), z.literal('auto')])
          .default(1)
          .describe(
            'Processes serving the port on this host: 1 (one process, as before), a number up to 64, or `auto` (one per CPU the process may use, os.availableParallelism()). Above 1 a supervising process forks the workers, restarts one that dies (with backoff) and, on SIGHUP, replaces them one at a time; /metrics adds up every worker (docs/deployment.md).',
          ),
      })
      .strict()
      .prefault({})
      .describe('HTTP server settings and input bounds.'),
    site: z
      .object({
        id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).describe('Site id.'),
        dataControlMode: z
          .enum(['disabled', 'opt-out', 'opt-in'])
          .default('opt-in')
          .describe(
            '`disabled`: no gating. `opt-out`: forward unless consent is denied (Segment reconciliation rules). `opt-in`: forward only what is granted; unknown goes to each destination\'s `whenUnknown`.',
          ),
        jurisdiction: jurisdictionSchema.optional(),
        categories: z
          .record(categoryId, categorySchema)
          .default({})
          .describe('The consent categories of this site, keyed by id (e.g. advertising, analytics, functional).'),
        consentClockSkewMs: z
          .int()
          .min(0)
          .max(3_600_000)
          .default(300_000)
          .describe(
            'How far ahead of this server\'s clock a consent time may be. The API refuses later times with a 400 naming the field; a hit\'s consent signals never count as later than the hit\'s arrival.',
          ),
      })
      .strict()
      .describe('The site whose hits this instance serves.'),
    scripts: z
      .object({
        enabled: z.boolean().default(false).describe('Serve gtag.js (/gtag/js), gtm.js (/gtm.js), fbevents.js (/<locale>/fbevents.js) and the pixel config (/signals/config/<id>) first-party, proxied from the vendors.'),
        origins: z
          .object({
            google: z.url({ protocol: /^https?$/ }).default('https://www.googletagmanager.com').describe('Where gtag.js and gtm.js come from (tests point it at a local server).'),
            meta: z.url({ protocol: /^https?$/ }).default('https://connect.facebook.net').describe('Where fbevents.js and the pixel config come from.'),
          })
          .strict()
          .prefault({})
          .describe('Vendor origins: the only hosts the script proxy ever connects to.'),
        timeoutMs: z.int().min(100).max(60_000).default(10_000).describe('Timeout of one upstream script request (502 beyond it).'),
      })
      .strict()
      .prefault({})
      .describe('First-party vendor scripts: an allowlist of paths on fixed origins, never an open proxy.'),
    identity: z
      .object({
        visitorId: z
          .array(idSourceSchema)
          .min(1)
          .max(16)
          .default([{ body: 'anonymousId' }])
          .describe('Where to read the visitor id (the key for stored and upstream consent), first valid one wins. E.g. the CMP cookie first: [{cookie: cb_vid}, {body: anonymousId}].'),
        maxIdLength: z.int().min(8).max(256).default(128).describe('Longest visitor id accepted; a longer or oddly shaped one is ignored.'),
        cookie: z
          .object({
            enabled: z.boolean().default(false).describe('Set a first-party visitor id cookie on hit answers, only when the hit\'s own consent grants `category`.'),
            name: z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/).default('_tw_vid').describe('Cookie name. Read it back with identity.visitorId: [{cookie: <name>}, …].'),
            domain: z.string().regex(/^\.?[A-Za-z0-9.-]{1,253}$/).optional().describe('Cookie Domain (e.g. example.com to share it with the site); absent: the tagging host only.'),
            maxAgeDays: z.int().min(1).max(400).default(390).describe('Lifetime in days (browsers cap cookie lifetimes at 400 days).'),
            category: categoryId.default('functional').describe('The site category whose grant allows storing the cookie.'),
          })
          .strict()
          .prefault({})
          .describe('Tagwarden\'s own first-party visitor id cookie (Secure, HttpOnly, SameSite=Lax).'),
      })
      .strict()
      .prefault({})
      .describe('How a hit\'s visitor is identified.'),
    consent: z
      .object({
        tcf: z
          .object({
            maxLength: z.int().min(64).max(16_384).default(2048).describe('Longest TCF string decoded; a longer one is invalid.'),
            maxAgeDays: z.int().min(1).max(3650).default(390).describe('A TCF string last updated longer ago than this is expired (default 390 days: the 13 months of 30 days the TCF spec gives the consent cookie).'),
            cacheEntries: z.int().min(0).max(1_000_000).default(10_000).describe('Decoded TCF strings kept in memory (LRU).'),
          })
          .strict()
          .prefault({})
          .describe('Decoding of IAB TCF strings (gdpr_consent parameter, euconsent-v2 cookie, context.consent.privacy.tcfConsentString).'),
      })
      .strict()
      .prefault({})
      .describe('How consent signals carried by hits are read.'),
    upstream: z
      .object({
        verify: z
          .object({
            url: z
              .string()
              .regex(/^https?:\/\/[^\s]+$/, 'an http(s) URL template')
              .refine((u) => u.includes('{visitorId}'), 'must contain {visitorId}')
              .describe('The verify URL with `{siteId}` and `{visitorId}` placeholders (URL-encoded when filled), e.g. https://api.cookieboss.io/api/v1/public/sites/{siteId}/consent/verify?visitor_id={visitorId}'),
            siteId: z.string().min(1).max(128).optional().describe('The site id the upstream knows this site by; defaults to site.id.'),
            apiKey: z.string().min(1).max(1024).describe('API key sent with every request. Use a ${ENV_VAR} reference.'),
            apiKeyHeader: z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/).default('X-API-Key').describe('Header carrying the API key.'),
            categories: z
              .record(z.string().min(1).max(128), categoryId)
              .refine((m) => Object.keys(m).length > 0, 'map at least one upstream category')
              .describe('Upstream category name → site category, e.g. {marketing: advertising, analytics: analytics}. Upstream categories not listed are ignored.'),
            requestsPerMinute: z.int().min(1).max(1_000_000).describe('The plan\'s rate limit (e.g. 100, 500, 1000); never exceeded in any 60 s window (by all instances together with `budgetScope: fleet`).'),
            budgetScope: z
              .enum(['instance', 'fleet'])
              .default('fleet')
              .describe('`fleet` (the default): every instance and worker process on the store shares the one budget of requestsPerMinute, one short store transaction per verify call; if the store fails no call is made (`upstream_budget_unavailable`, fail closed). `instance`: each keeps its own budget in memory (N instances may make N times the plan\'s rate). See docs/consent.md, "Budget".'),
            cacheTtlMs: z.int().min(1000).max(86_400_000).default(300_000).describe('How long an answer with consent is reused.'),
            negativeCacheTtlMs: z.int().min(0).max(86_400_000).default(30_000).describe('How long "no consent found" is reused (shorter: the visitor may answer the banner any moment).'),
            maxCacheEntries: z.int().min(1).max(10_000_000).default(100_000).describe('Most visitors whose answers are kept (LRU).'),
            timeoutMs: z.int().min(100).max(60_000).default(2_000).describe('Timeout of one verify request, counted from when it gets a connection; a timeout is never read as consent.'),
            maxConcurrent: z.int().min(1).max(1024).default(32).describe('Most verify requests at once (and connections to the upstream); more lookups wait for a slot.'),
            maxWaiting: z.int().min(0).max(1_000_000).default(10_000).describe('Most lookups waiting for a slot; beyond it a lookup fails at once (`upstream_overloaded`): its events are dropped, or wait for a later lookup for `whenUnknown: hold` destinations.'),
            backoff: z
              .object({
                baseMs: z.int().min(10).max(60_000).default(500).describe('Backoff base after a 5xx, timeout or network error (full jitter, doubling).'),
                maxMs: z.int().min(100).max(3_600_000).default(60_000).describe('Largest backoff.'),
              })
              .strict()
              .prefault({})
              .describe('Backoff after failures.'),
            breaker: z
              .object({
                windowMs: z.int().min(1000).max(3_600_000).default(30_000).describe('Rolling window the error ratio is measured over.'),
                minRequests: z.int().min(1).max(100_000).default(20).describe('Fewest calls in the window before the circuit may open.'),
                errorRatio: z.number().gt(0).max(1).default(0.5).describe('Failure share that opens the circuit.'),
                openMs: z.int().min(100).max(3_600_000).default(30_000).describe('Time open before one probe is let through.'),
              })
              .strict()
              .prefault({})
              .describe('Circuit breaker: does not open on one failure.'),
          })
          .strict()
          .optional()
          .describe('A CookieBoss-compatible consent verify API, asked (through a cache) when a hit does not settle a destination\'s categories. Absent: no upstream.'),
      })
      .strict()
      .prefault({})
      .describe('Consent sources outside Tagwarden.'),
    store: z
      .object({
        url: z
          .string()
          .regex(/^(sqlite:.+|postgres(ql)?:\/\/.+)$/, 'sqlite:<path> or postgres://…')
          .default('sqlite:./data/tagwarden.db')
          .describe('The consent store: `sqlite:<path>` (embedded, one file, created on first start) or `postgres://user:pass@host/db` (several instances). Use ${DATABASE_URL} for credentials.'),
        durability: z
          .enum(['process', 'power'])
          .default('process')
          .describe('SQLite only. `process`: WAL with synchronous=NORMAL, a commit survives a crash or SIGKILL of the process (not a power loss or an OS crash). `power`: synchronous=FULL, a commit is fsynced and survives a power loss too, at one disk flush per commit.'),
        recordHitConsent: z
          .boolean()
          .default(false)
          .describe(
            "Write the consent a hit carries (Segment `context.consent.categoryPreferences`, gcs/gcd, a TCF string) to its visitor's profile, source `hit`, last-write-wins by the signal's own time (never later than the hit's arrival), so a later hit without signals is decided by it (seed seeka-server-side-consent.txt: one browser consent action reaches every server-side destination). Written after the hit is answered, only when the recorded state differs; a failed write is logged and counted (`tagwarden_hit_consent_writes_total`), never fails the hit. Sec-GPC is not recorded (the browser sends it with every request).",
          ),
      })
      .strict()
      .prefault({})
      .describe('Where consent records, the audit log, API keys and webhook subscriptions live.'),
    receipts: z
      .object({
        enabled: z
          .boolean()
          .default(false)
          .describe('Store a decision receipt per event and destination (docs/receipts.md): the consent signals seen, the mode, the rules applied, the outcome. Ids only, no event data. Needs the store. Off by default: one row per destination of every hit is a write load a site should choose.'),
        retentionDays: z.int().min(1).max(3650).default(30).describe('Receipts older than this are deleted.'),
        maxRows: z.int().min(1000).max(100_000_000).default(1_000_000).describe('At most this many receipts are kept; the oldest go first.'),
        flushMs: z.int().min(100).max(60_000).default(1000).describe('How often buffered receipts are written, in one transaction.'),
        maxBuffer: z.int().min(100).max(1_000_000).default(10_000).describe('Receipts buffered at most between writes; beyond, receipts are dropped and counted (`tagwarden_receipts_dropped_total`), never slowing a hit.'),
      })
      .strict()
      .prefault({})
      .describe('Decision receipts: why each event went, or did not go, to each destination.'),
    api: z
      .object({
        enabled: z.boolean().default(true).describe('Serve the consent API under /api/v1 (keys from `npx tagwarden keys create`).'),
        maxBodyBytes: z.int().min(1024).max(16_777_216).default(1_048_576).describe('Largest JSON body of a consent API request (413 beyond it).'),
        maxCsvBytes: z.int().min(1024).max(10_737_418_240).default(268_435_456).describe('Largest CSV import (413 beyond it); imports are streamed, never held in memory.'),
        maxBatchEvents: z.int().min(1).max(10_000).default(1000).describe('Most consent events in one batch request.'),
        rateLimit: z
          .object({
            perSecond: z
              .number()
              .positive()
              .max(100_000)
              .optional()
              .describe('Sustained requests per second per API key: counted by each instance on its own with `scope: instance` (N instances behind a load balancer give a key up to N times this), by all of them together with `scope: fleet`. Default 50 when perMinute is not given.'),
            perMinute: z
              .int()
              .min(1)
              .max(6_000_000)
              .optional()
              .describe('Instead of perSecond: sustained requests per minute per API key, as CookieBoss states its plans (100, 500, 1000). A client keeping to this many in any 60 s window is never refused; Retry-After is the wait for the next request, 60 / perMinute s rounded up.'),
            burst: z
              .int()
              .min(1)
              .max(6_000_000)
              .optional()
              .describe('Requests a key may send at once before the sustained rate applies. Default 100 with perSecond, perMinute with perMinute (a minute\'s allowance at once).'),
            scope: z
              .enum(['instance', 'fleet'])
              .default('instance')
              .describe('`instance`: each instance (and worker) keeps its own buckets in memory, so N of them allow a key N times the rate. `fleet`: the buckets are in the store, shared by every instance on it, one atomic update per API request (a store round trip each); if the store fails the request is let through (fail open) and the failure logged. See docs/consent-api.md, "API keys".'),
          })
          .strict()
          .refine((r) => r.perSecond === undefined || r.perMinute === undefined, { message: 'give perSecond or perMinute, not both', path: ['perMinute'] })
          .prefault({})
          .describe('Per-key rate limit: beyond it, 429 with Retry-After.'),
        authFailures: z
          .object({
            perMinute: z.int().min(1).max(100_000).default(30).describe('Failed authentications (unknown, revoked or malformed API keys, wrong admin keys) allowed per client address per minute, after the burst; beyond it 429 with Retry-After, the key not even looked up.'),
            burst: z.int().min(1).max(100_000).default(10).describe('Failed authentications a client address may make at once.'),
            negativeCacheEntries: z
              .int()
              .min(0)
              .max(1_000_000)
              .default(10_000)
              .describe('Digests of recently failed API keys kept (LRU, for the key cache\'s TTL): a key that just failed is answered 401 again without a database look-up. 0: off.'),
          })
          .strict()
          .prefault({})
          .describe('Throttling of failed authentication per client address (server.trustProxyHops decides the address), for the API keys of /api/v1 and the admin key of /debug.'),
        verify: z
          .object({
            categories: z
              .record(z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/, 'an answer name is a letter followed by up to 63 letters, digits, _ or -'), categoryId)
              .refine((m) => Object.keys(m).length > 0, 'map at least one category')
              .optional()
              .describe(
                'Category names of the CookieBoss-compatible verify answer → site category, e.g. {marketing: advertising, analytics: analytics, functional: functional, necessary: necessary}; only the names listed are answered. Absent: the CookieBoss names where the site has them (`marketing` ← the site\'s `marketing`, else its `advertising`; `analytics`, `functional`, `necessary` as themselves) and every other site category under its own id.',
              ),
          })
          .strict()
          .prefault({})
          .describe('GET /api/v1/public/sites/:siteId/consent/verify (CookieBoss-compatible).'),
        webhooks: z
          .object({
            allowPrivate: z.boolean().default(false).describe('Allow webhook URLs on loopback, private and link-local addresses (tests, internal services).'),
            allowHosts: z.array(z.string().min(1).max(253)).max(100).default([]).describe('Host names allowed even when they resolve to private addresses.'),
          })
          .strict()
          .prefault({})
          .describe('Where consent-change webhooks may be delivered.'),
        secureprivacy: secureprivacySchema,
        expiry: z
          .object({
            sweepMs: z.int().min(1000).max(86_400_000).default(60_000).describe('How often each instance looks for granted items whose valid_until has passed, to audit each one (action `expired`) and send `consent.expired` webhooks; an expiry is announced at most this long after it passes.'),
            batchSize: z.int().min(1).max(10_000).default(200).describe('Most expiries announced per transaction; a full batch is followed by the next at once.'),
          })
          .strict()
          .prefault({})
          .describe('Announcing passed valid_until dates: an audit record and a `consent.expired` webhook per expired grant.'),
      })
      .strict()
      .prefault({})
      .describe('The server-to-server consent API.'),
    destinations: z.array(destinationSchema).max(64).default([]).describe('Where events go, each an instance of a template.'),
    delivery: z
      .object({
        maxAttempts: z.int().min(1).max(10_000).default(300).describe('Most attempts per vendor request, the first included (300: enough to keep trying for maxTotalMs at the maxDelayMs cap).'),
        maxTotalMs: z.int().min(1000).max(86_400_000).default(14_400_000).describe('Give up retrying after this long since the first attempt (4 h, as Segment does); then the event is a dead letter in the journal.'),
        baseDelayMs: z.int().min(1).max(60_000).default(500).describe('Backoff base: attempt n waits up to base * 2^(n-1) (full jitter).'),
        maxDelayMs: z.int().min(1).max(3_600_000).default(60_000).describe('Largest backoff between two attempts (Retry-After may ask for more and is honoured).'),
        connectionsPerOrigin: z
          .int()
          .min(1)
          .max(256)
          .default(128)
          .describe(
            'Most keep-alive connections per vendor origin (opened as needed). At least the largest maxInFlight of the destinations sharing an origin (GA4: 128), or requests wait for a connection with their timeout running.',
          ),
        maxQueuedEvents: z.int().min(1).max(1_000_000).default(10_000).describe('Most events waiting per destination; beyond it new events are refused and counted.'),
        journal: z
          .object({
            enabled: z.boolean().default(true).describe('Commit every accepted hit to the store before its 2xx, and resume unfinished ones after a restart or crash (docs/delivery.md, "The journal").'),
            maxEvents: z.int().min(1).max(10_000_000).default(200_000).describe('Most acknowledged events not yet finished by every destination; beyond it hits are refused with 503 and Retry-After.'),
            maxBytes: z
              .int()
              .min(65_536)
              .max(17_179_869_184)
              .default(512 * 1024 * 1024)
              .describe('Most bytes of those events (their stored JSON); beyond it hits are refused with 503 and Retry-After.'),
            windowMs: z.int().min(0).max(2).default(0).describe('Extra wait (ms) for more hits to share a commit; 0: the hits of one event-loop turn share it.'),
            leaseMs: z.int().min(1000).max(600_000).default(30_000).describe('How long an instance holds the hits it answered without renewing; another instance on the same PostgreSQL, or another worker on the same SQLite file (server.workers), takes over the hits of one that stopped renewing.'),
            retryAfterS: z.int().min(1).max(3600).default(5).describe('Retry-After (seconds) of a 503 answered when a hit cannot be made durable.'),
            deadRetentionMs: z
              .int()
              .min(60_000)
              .max(31_536_000_000)
              .default(30 * 86_400_000)
              .describe('How long dead letters are kept (then purged, with their events); delivered events leave the journal at once.'),
          })
          .strict()
          .prefault({})
          .describe('The delivery journal (needs the store).'),
      })
      .strict()
      .prefault({})
      .describe('Delivery to vendors: retries and connection pools.'),
    hold: z
      .object({
        maxEvents: z
          .int()
          .min(0)
          .max(1_000_000)
          .default(100_000)
          .describe('Most events held at once waiting for consent (an upstream lookup in flight, or `whenUnknown: hold`); beyond it they are dropped with `consent_unresolved`. `maxBytes` bounds their memory.'),
        maxAgeMs: z
          .int()
          .min(100)
          .max(3_600_000)
          .default(30_000)
          .describe(
            'Longest an event is held: its deadline is held-at + maxAgeMs, then it is dropped with `consent_unresolved`. With the delivery journal the hold is kept in the store: a restart resumes it with the same deadline, never a fresh one, and drops it at the start if the deadline passed meanwhile.',
          ),
        maxBytes: z
          .int()
          .min(1024)
          .max(1_073_741_824)
          .default(64 * 1024 * 1024)
          .describe('Most bytes of events held at once (their JSON size); beyond it new ones are dropped with `consent_unresolved`.'),
      })
      .strict()
      .prefault({})
      .describe('Bounds of the pending queue of events waiting for consent (held in memory, and in the delivery journal when it is on).'),
    debug: z
      .object({
        explain: z.boolean().default(false).describe('Enable POST /debug/explain (needs adminKey).'),
        adminKey: z.string().min(16).optional().describe('Key for /debug routes, sent as `Authorization: Bearer <key>` or `X-Admin-Key`, and the login key of the dashboard (/ui). At least 16 characters.'),
      })
      .strict()
      .prefault({})
      .describe('Operator tools.'),
    ui: z
      .object({
        enabled: z
          .boolean()
          .default(true)
          .describe('Serve the dashboard at /ui (docs/ui.md). It is on only with debug.adminKey (its login key) and the store; otherwise /ui answers 404 and startup logs why.'),
        sessionTtlSeconds: z
          .int()
          .min(60)
          .max(604_800)
          .default(28_800)
          .describe('How long a dashboard login lasts (the session cookie\'s Max-Age and the signed token\'s expiry).'),
        secureCookie: z
          .boolean()
          .default(false)
          .describe('Always mark the session cookie Secure. Without it the cookie is Secure when the login came over https (directly or per server.trustProxyHops).'),
      })
      .strict()
      .prefault({})
      .describe('The dashboard: delivery overview, decisions, visitor lookup, dead letters, destinations, live preview.'),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('Log level.'),
      })
      .strict()
      .prefault({})
      .describe('Structured JSON logs (pino).'),
    templatesDir: z.string().optional().describe('Directory of destination templates; defaults to the templates/ folder shipped with Tagwarden.'),
  })
  // Rules across fields (unique ids, known categories, adminKey with explain) are in
  // cross-checks.ts: they run on the raw config even when this schema fails, so all problems show.
  .strict();

export type RawConfigInput = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
export type DestinationConfig = z.output<typeof destinationSchema>;
export type ConsentRequirement = z.output<typeof consentRequirementSchema>;
export type DataControlMode = ParsedConfig['site']['dataControlMode'];
export type SiteConfig = ParsedConfig['site'];
