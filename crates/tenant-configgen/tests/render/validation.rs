//! Data that cannot make a valid config fails with an error naming the tenant.

use super::*;

#[test]
fn validation_errors_name_the_tenant() {
    // Two tenants whose ids share the first 32 bits share agent and account ids.
    let a = tenant(0xabcd_0001, "A", TenantStatus::Active);
    let mut b = tenant(0xabcd_0001, "B", TenantStatus::Active);
    b.id = fixture::tenant_id(0xabcd_0002);
    b.agent_id = a.agent_id.clone();
    let owned = vec![
        Owned {
            tenant: a.clone(),
            channels: vec![],
        },
        Owned {
            tenant: b.clone(),
            channels: vec![],
        },
    ];
    let e = render_combined(&fixture::sources(&owned), &RenderOptions::default()).unwrap_err();
    assert!(matches!(e, ConfigError::DuplicateAgent { .. }), "{e}");
    assert!(
        e.to_string().contains(&a.id.to_string()) && e.to_string().contains(&b.id.to_string()),
        "{e}"
    );

    // Same account id on one channel.
    let mut c = tenant(0xabcd_0003, "C", TenantStatus::Active);
    c.account_id = a.account_id.clone();
    let owned = vec![
        Owned {
            channels: vec![channel(
                &a,
                ChannelKind::Telegram,
                true,
                None,
                creds(ChannelKind::Telegram, 1),
            )],
            tenant: a.clone(),
        },
        Owned {
            channels: vec![channel(
                &c,
                ChannelKind::Telegram,
                true,
                None,
                creds(ChannelKind::Telegram, 2),
            )],
            tenant: c.clone(),
        },
    ];
    let e = render_combined(&fixture::sources(&owned), &RenderOptions::default()).unwrap_err();
    assert!(
        matches!(
            e,
            ConfigError::DuplicateAccount {
                channel: ChannelKind::Telegram,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("tenant-abcd0001"), "{e}");

    // Two served channels of one kind on one tenant.
    let owned = vec![Owned {
        channels: vec![
            channel(
                &a,
                ChannelKind::Discord,
                true,
                None,
                creds(ChannelKind::Discord, 1),
            ),
            channel(
                &a,
                ChannelKind::Discord,
                true,
                None,
                creds(ChannelKind::Discord, 2),
            ),
        ],
        tenant: a.clone(),
    }];
    let e = render_combined(&fixture::sources(&owned), &RenderOptions::default()).unwrap_err();
    assert!(
        matches!(
            e,
            ConfigError::DuplicateChannel {
                channel: ChannelKind::Discord,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string().contains("tenant-abcd0001") && e.to_string().contains(&a.id.to_string()),
        "{e}"
    );

    // A channel passed with the wrong tenant.
    let owned = vec![Owned {
        channels: vec![channel(
            &c,
            ChannelKind::Signal,
            true,
            None,
            creds(ChannelKind::Signal, 1),
        )],
        tenant: a.clone(),
    }];
    let e = render_tenant(&fixture::sources(&owned)[0], &RenderOptions::default()).unwrap_err();
    assert!(matches!(e, ConfigError::ForeignChannel { .. }), "{e}");
    assert!(e.to_string().contains(&c.id.to_string()), "{e}");
}
