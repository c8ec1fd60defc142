# syntax=docker/dockerfile:1
# An OpenClaw gateway for the local stack of compose.yaml: the npm release CI tests against, on
# the Node it needs, run as the same numeric user (10001) as the control plane's image, so it can
# read the 0600 config file that `moltbot-saas config sync` keeps in the shared volume.
ARG NODE_VERSION=24.21.0
FROM node:${NODE_VERSION}-bookworm-slim
ARG OPENCLAW_VERSION=2026.9.6
RUN npm install --global --no-audit --no-fund "openclaw@${OPENCLAW_VERSION}" \
    && npm cache clean --force \
    && install -d -o 10001 -g 10001 -m 0750 /home/openclaw /var/lib/openclaw /var/lib/moltbot-saas-gateway
ENV HOME=/home/openclaw \
    OPENCLAW_STATE_DIR=/var/lib/openclaw/state \
    OPENCLAW_CONFIG_PATH=/var/lib/moltbot-saas-gateway/openclaw.json \
    OPENCLAW_CONFIG_READONLY=1
USER 10001:10001
WORKDIR /home/openclaw
ENTRYPOINT ["openclaw"]
CMD ["gateway", "run"]
