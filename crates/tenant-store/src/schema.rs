//! The database schema, one definition for both backends.
//!
//! Only portable column types appear here (`Text` for UUIDs and JSON, `Timestamp` in UTC, `Bool`,
//! `BigInt`), so the same table definitions serve PostgreSQL and SQLite. Keep it in step with
//! `migrations/{postgres,sqlite}`.

diesel::table! {
    tenants (id) {
        id -> Text,
        name -> Text,
        slug -> Text,
        account_id -> Text,
        agent_id -> Text,
        plan -> Text,
        status -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        quota_exceeded_period -> Nullable<Text>,
        deleted_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    channels (id) {
        id -> Text,
        tenant_id -> Text,
        kind -> Text,
        enabled -> Bool,
        display_name -> Nullable<Text>,
        credentials -> Text,
        credentials_key_id -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    access_tokens (id) {
        id -> Text,
        scope -> Text,
        name -> Text,
        token_hash -> Text,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        tenant_id -> Text,
        name -> Text,
        prefix -> Text,
        key_hash -> Text,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        expires_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        role -> Text,
        replaced_by -> Nullable<Text>,
    }
}

diesel::table! {
    tenant_users (id) {
        id -> Text,
        tenant_id -> Text,
        email -> Text,
        password_hash -> Nullable<Text>,
        role -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        disabled -> Bool,
        last_login_at -> Nullable<Timestamp>,
        password_changed_at -> Nullable<Timestamp>,
        invite_hash -> Nullable<Text>,
        invite_expires_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    operator_users (id) {
        id -> Text,
        email -> Text,
        password_hash -> Text,
        disabled -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        last_login_at -> Nullable<Timestamp>,
        password_changed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Text,
        token_hash -> Text,
        family_id -> Text,
        tenant_user_id -> Nullable<Text>,
        operator_user_id -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    login_throttle (throttle_key) {
        throttle_key -> Text,
        failures -> Integer,
        locked_until -> Nullable<Timestamp>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    idempotency_keys (caller, method, path, idem_key) {
        caller -> Text,
        method -> Text,
        path -> Text,
        idem_key -> Text,
        fingerprint -> Text,
        status_code -> Integer,
        location -> Nullable<Text>,
        body -> Text,
        sealed -> Bool,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    tenant_slug_redirects (old_slug) {
        old_slug -> Text,
        tenant_id -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        tenant_id -> Text,
        session_key -> Text,
        channel -> Text,
        peer_id -> Nullable<Text>,
        chat_type -> Text,
        created_at -> Timestamp,
        last_activity_at -> Timestamp,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Text,
        tenant_id -> Nullable<Text>,
        actor_type -> Text,
        actor_id -> Nullable<Text>,
        action -> Text,
        resource_type -> Text,
        resource_id -> Nullable<Text>,
        request_id -> Nullable<Text>,
        client_addr -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        details -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    webhook_endpoints (id) {
        id -> Text,
        tenant_id -> Nullable<Text>,
        url -> Text,
        description -> Nullable<Text>,
        event_types -> Text,
        secret -> Text,
        enabled -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        previous_secret_expires_at -> Nullable<Timestamp>,
        failing_since -> Nullable<Timestamp>,
        disabled_reason -> Nullable<Text>,
        secret_key_id -> Nullable<Text>,
    }
}

diesel::table! {
    events (id) {
        id -> Text,
        tenant_id -> Nullable<Text>,
        source -> Text,
        source_id -> Text,
        event_type -> Text,
        payload -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Text,
        tenant_id -> Nullable<Text>,
        endpoint_id -> Text,
        event_id -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        lease_owner -> Nullable<Text>,
        last_status_code -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        completed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    webhook_attempts (id) {
        id -> Text,
        delivery_id -> Text,
        attempt -> Integer,
        outcome -> Text,
        status_code -> Nullable<Integer>,
        latency_ms -> BigInt,
        error -> Nullable<Text>,
        response_excerpt -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    webhook_endpoint_circuits (endpoint_id) {
        endpoint_id -> Text,
        state -> Text,
        failures -> Integer,
        opens -> Integer,
        retry_at -> Nullable<Timestamp>,
        probe_owner -> Nullable<Text>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    maintenance_leases (name) {
        name -> Text,
        holder -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    config_revision (slot) {
        slot -> Integer,
        revision -> BigInt,
    }
}

diesel::table! {
    tenant_limits (tenant_id) {
        tenant_id -> Text,
        max_channels -> Nullable<BigInt>,
        max_webhook_endpoints -> Nullable<BigInt>,
        messages_per_month -> Nullable<BigInt>,
        requests_per_minute_per_key -> Nullable<BigInt>,
        requests_per_minute_per_tenant -> Nullable<BigInt>,
        request_burst -> Nullable<BigInt>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    usage_counters (tenant_id, period) {
        tenant_id -> Text,
        period -> Text,
        messages -> BigInt,
        api_requests -> BigInt,
        threshold_notified_at -> Nullable<Timestamp>,
        exceeded_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    gateways (id) {
        id -> Text,
        name -> Text,
        kind -> Text,
        capacity -> Nullable<BigInt>,
        draining -> Bool,
        token_hash -> Nullable<Text>,
        token_prefix -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        last_heartbeat_at -> Nullable<Timestamp>,
        served_etag -> Nullable<Text>,
        served_revision -> Nullable<BigInt>,
        fencing -> Bool,
        held -> BigInt,
    }
}

diesel::table! {
    tenant_placements (tenant_id) {
        tenant_id -> Text,
        gateway_id -> Nullable<Text>,
        target_gateway_id -> Nullable<Text>,
        state -> Text,
        pinned -> Bool,
        moving_since -> Nullable<Timestamp>,
        move_revision -> Nullable<BigInt>,
        updated_at -> Timestamp,
        dedicated -> Bool,
    }
}

diesel::table! {
    tenant_billing (tenant_id) {
        tenant_id -> Text,
        customer_id -> Nullable<Text>,
        subscription_id -> Nullable<Text>,
        subscription_status -> Nullable<Text>,
        subscription_created -> Nullable<Timestamp>,
        price_id -> Nullable<Text>,
        state -> Text,
        current_period_end -> Nullable<Timestamp>,
        status_at -> Nullable<Timestamp>,
        past_due_since -> Nullable<Timestamp>,
        paid_at -> Nullable<Timestamp>,
        suspended_at -> Nullable<Timestamp>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    stripe_events (id) {
        id -> Text,
        event_type -> Text,
        tenant_id -> Nullable<Text>,
        created_at -> Timestamp,
        received_at -> Timestamp,
    }
}

diesel::joinable!(channels -> tenants (tenant_id));
diesel::joinable!(tenant_billing -> tenants (tenant_id));
diesel::joinable!(tenant_placements -> tenants (tenant_id));
diesel::joinable!(tenant_limits -> tenants (tenant_id));
diesel::joinable!(usage_counters -> tenants (tenant_id));
diesel::joinable!(api_keys -> tenants (tenant_id));
diesel::joinable!(tenant_users -> tenants (tenant_id));
diesel::joinable!(refresh_tokens -> tenant_users (tenant_user_id));
diesel::joinable!(refresh_tokens -> operator_users (operator_user_id));
diesel::joinable!(sessions -> tenants (tenant_id));
diesel::joinable!(tenant_slug_redirects -> tenants (tenant_id));
diesel::joinable!(webhook_endpoints -> tenants (tenant_id));
diesel::joinable!(events -> tenants (tenant_id));
diesel::joinable!(webhook_deliveries -> webhook_endpoints (endpoint_id));
diesel::joinable!(webhook_deliveries -> events (event_id));
diesel::joinable!(webhook_attempts -> webhook_deliveries (delivery_id));
diesel::joinable!(webhook_endpoint_circuits -> webhook_endpoints (endpoint_id));

diesel::allow_tables_to_appear_in_same_query!(
    tenants,
    channels,
    access_tokens,
    config_revision,
    api_keys,
    tenant_users,
    sessions,
    audit_log,
    webhook_endpoints,
    operator_users,
    refresh_tokens,
    login_throttle,
    idempotency_keys,
    tenant_slug_redirects,
    events,
    webhook_deliveries,
    webhook_attempts,
    tenant_limits,
    usage_counters,
    webhook_endpoint_circuits,
    maintenance_leases,
    gateways,
    tenant_placements,
    tenant_billing,
    stripe_events,
);
