//! Roles of the people and keys acting for one tenant.

use crate::tenant::string_enum;

string_enum!(
    /// What a tenant user (or a tenant API key) may do within its tenant. The permission matrix
    /// that maps roles to actions is written down in `docs/security.md`.
    Role, "role" {
        /// Everything within the tenant, including users, API keys and billing.
        Owner => "owner",
        /// Channels, webhooks and the tenant's settings, but not users, keys or billing.
        Admin => "admin",
        /// Read-only access.
        Member => "member",
    }
);

impl Role {
    /// Whether this role includes everything `other` may do (owner ⊇ admin ⊇ member).
    pub fn at_least(self, other: Role) -> bool {
        self.rank() >= other.rank()
    }

    fn rank(self) -> u8 {
        match self {
            Role::Owner => 2,
            Role::Admin => 1,
            Role::Member => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_parse() {
        assert!(Role::Owner.at_least(Role::Admin));
        assert!(Role::Admin.at_least(Role::Member));
        assert!(!Role::Member.at_least(Role::Admin));
        assert!(!Role::Admin.at_least(Role::Owner));
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().ok(), Some(*r));
        }
        assert!("root".parse::<Role>().is_err());
    }
}
