"""The README's quick start through a client generated from /openapi.json (openapi-python-client).

Run by scripts/contract/generated-client.sh with the generated package `moltbot_client` on the
path, SAAS_URL and SAAS_TOKEN (an operator token) set.
"""

import json
import os
import sys

from moltbot_client import AuthenticatedClient
from moltbot_client.api.channels import create_channel, update_channel
from moltbot_client.api.config import get_config
from moltbot_client.api.tenants import create_tenant, get_tenant
from moltbot_client.models import (
    CreateChannelRequest,
    CreateChannelRequestChannel,
    CreateTenantRequest,
    ErrorBody,
    UpdateChannelRequest,
    UpdateChannelKind,
    UpdateChannelRequestCredentialsType0,
)


def main() -> int:
    client = AuthenticatedClient(base_url=os.environ["SAAS_URL"], token=os.environ["SAAS_TOKEN"])

    # Create a tenant: the answer carries its API key, shown only this once.
    created = create_tenant.sync_detailed(client=client, body=CreateTenantRequest(name="Acme Corp"))
    assert created.status_code == 201, created.content
    tenant = created.parsed
    assert tenant.api_key.startswith("msk_live_"), "an API key"
    print(f"tenant {tenant.id} ({tenant.slug}), account {tenant.account_id}")

    # Add a Telegram channel; without credentials it waits for them.
    channel = create_channel.sync_detailed(
        tenant.id,
        client=client,
        body=CreateChannelRequest(channel=CreateChannelRequestChannel("telegram"), enabled=True),
    )
    assert channel.status_code == 201, channel.content
    assert channel.parsed.state == "awaiting_credentials", channel.parsed.state

    # Give it its bot token.
    creds = UpdateChannelRequestCredentialsType0.from_dict({"botToken": "123456789:AAexampleTokenFromBotFather"})
    updated = update_channel.sync_detailed(
        tenant.id, UpdateChannelKind("telegram"), client=client, body=UpdateChannelRequest(credentials=creds)
    )
    assert updated.status_code == 200, updated.content
    assert updated.parsed.state == "ready", updated.parsed.state

    # The gateway's configuration, with this tenant's agent, account and binding.
    config = get_config.sync_detailed(client=client)
    assert config.status_code == 200, config.content
    document = json.loads(config.content)
    assert tenant.account_id in json.dumps(document), "the tenant's account is in the config"

    # A refusal is the documented error body.
    missing = get_tenant.sync_detailed("00000000-0000-4000-8000-000000000000", client=client)
    assert missing.status_code == 404
    assert isinstance(missing.parsed, ErrorBody), missing.parsed
    assert missing.parsed.error.code == "not_found"

    print("quick start through the generated client: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
