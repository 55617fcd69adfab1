# Tagwarden: first-party tagging server. Build: docker build -t tagwarden .
# Run:   docker run -p 8080:8080 -v tagwarden-data:/data -e TAGWARDEN_CONFIG=/app/config/tagwarden.yaml tagwarden

FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only; the runtime is the image's own Node 24 (the `node` devDependency is
# for development machines).
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:24-slim
ENV NODE_ENV=production
# The default config keeps the consent store here (its store.url reads TAGWARDEN_STORE_URL).
ENV TAGWARDEN_STORE_URL=sqlite:/data/tagwarden.db
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY src ./src
COPY templates ./templates
# The dashboard's page and modules (docs/ui.md), served as they are.
COPY ui ./ui
COPY config ./config
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8080
# PORT, when set (docker run -e PORT=…), is the port Tagwarden listens on (src/config/port-env.ts).
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "src/main.ts"]
