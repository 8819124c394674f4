//! The roles claim to exactly one callvault role: no mapped group, groups
//! that map to two roles, or a claim of the wrong type or size is a refusal.

use serde_json::Value;

use super::config::RoleMap;
use crate::auth::Role;

/// More groups than this in one claim is refused rather than scanned.
pub const MAX_GROUPS: usize = 1000;
/// A group name longer than this is refused (the configured names are shorter).
pub const MAX_GROUP_CHARS: usize = 256;

/// Why a verified person gets no role. `kind` is what the audit row records.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleRefusal {
    #[error("the ID token has no roles claim")]
    MissingClaim,
    #[error("the roles claim is not a list of strings")]
    WrongType,
    #[error("the roles claim is too large")]
    TooLarge,
    #[error("no group maps to a callvault role")]
    NoMappedGroup,
    #[error("the groups map to more than one role ({0} and {1})")]
    SeveralRoles(Role, Role),
}

impl RoleRefusal {
    /// A short, fixed name for audit rows and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::MissingClaim => "roles_claim_missing",
            Self::WrongType => "roles_claim_wrong_type",
            Self::TooLarge => "roles_claim_too_large",
            Self::NoMappedGroup => "no_mapped_group",
            Self::SeveralRoles(..) => "several_roles",
        }
    }
}

/// The one role the claim's groups map to.
pub fn role_from_claim(claim: Option<&Value>, map: &RoleMap) -> Result<Role, RoleRefusal> {
    let groups = match claim {
        None | Some(Value::Null) => return Err(RoleRefusal::MissingClaim),
        Some(Value::Array(groups)) => groups,
        Some(_) => return Err(RoleRefusal::WrongType),
    };
    if groups.len() > MAX_GROUPS {
        return Err(RoleRefusal::TooLarge);
    }
    let mut role: Option<Role> = None;
    for group in groups {
        let Value::String(group) = group else {
            return Err(RoleRefusal::WrongType);
        };
        if group.chars().count() > MAX_GROUP_CHARS {
            return Err(RoleRefusal::TooLarge);
        }
        match (role, map.role_of(group)) {
            (_, None) => {}
            (None, Some(r)) => role = Some(r),
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => return Err(RoleRefusal::SeveralRoles(a, b)),
        }
    }
    role.ok_or(RoleRefusal::NoMappedGroup)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map() -> RoleMap {
        RoleMap::parse(
            "cc-supervisors=supervisor,cc-auditors=auditor,cc-admins=admin,cc-leads=supervisor",
        )
        .unwrap()
    }

    #[test]
    fn each_mapped_group_gives_its_role() {
        for (group, role) in [
            ("cc-supervisors", Role::Supervisor),
            ("cc-auditors", Role::Auditor),
            ("cc-admins", Role::Admin),
        ] {
            let claim = json!(["everyone", group]);
            assert_eq!(role_from_claim(Some(&claim), &map()), Ok(role));
        }
    }

    #[test]
    fn two_groups_that_map_to_the_same_role_are_one_role() {
        let claim = json!(["cc-leads", "cc-supervisors"]);
        assert_eq!(role_from_claim(Some(&claim), &map()), Ok(Role::Supervisor));
    }

    #[test]
    fn groups_that_map_to_two_roles_are_refused() {
        let claim = json!(["cc-supervisors", "cc-admins"]);
        assert_eq!(
            role_from_claim(Some(&claim), &map()),
            Err(RoleRefusal::SeveralRoles(Role::Supervisor, Role::Admin))
        );
    }

    #[test]
    fn no_mapped_group_no_groups_and_no_claim_are_refused() {
        assert_eq!(
            role_from_claim(Some(&json!(["cc-sales"])), &map()),
            Err(RoleRefusal::NoMappedGroup)
        );
        assert_eq!(
            role_from_claim(Some(&json!([])), &map()),
            Err(RoleRefusal::NoMappedGroup)
        );
        assert_eq!(
            role_from_claim(None, &map()),
            Err(RoleRefusal::MissingClaim)
        );
        assert_eq!(
            role_from_claim(Some(&Value::Null), &map()),
            Err(RoleRefusal::MissingClaim)
        );
    }

    #[test]
    fn a_claim_of_the_wrong_type_is_refused_even_when_it_names_a_group() {
        for claim in [
            json!("cc-supervisors"),
            json!({"cc-supervisors": true}),
            json!(7),
            json!(["cc-supervisors", 7]),
            json!([["cc-supervisors"]]),
        ] {
            assert_eq!(
                role_from_claim(Some(&claim), &map()),
                Err(RoleRefusal::WrongType),
                "{claim}"
            );
        }
    }

    #[test]
    fn overlong_claims_and_values_are_refused() {
        let many: Vec<String> = (0..=MAX_GROUPS).map(|i| format!("g{i}")).collect();
        let mut claim = json!(many);
        assert_eq!(
            role_from_claim(Some(&claim), &map()),
            Err(RoleRefusal::TooLarge)
        );
        claim = json!(["x".repeat(MAX_GROUP_CHARS + 1), "cc-admins"]);
        assert_eq!(
            role_from_claim(Some(&claim), &map()),
            Err(RoleRefusal::TooLarge)
        );
    }

    #[test]
    fn hostile_group_names_are_just_unmapped() {
        let claim = json!([
            "<script>alert(1)</script>",
            "cc-admins\u{0}",
            "CC-ADMINS",
            " cc-admins"
        ]);
        assert_eq!(
            role_from_claim(Some(&claim), &map()),
            Err(RoleRefusal::NoMappedGroup)
        );
    }

    #[test]
    fn refusal_kinds_are_fixed_words() {
        for r in [
            RoleRefusal::MissingClaim,
            RoleRefusal::WrongType,
            RoleRefusal::TooLarge,
            RoleRefusal::NoMappedGroup,
            RoleRefusal::SeveralRoles(Role::Admin, Role::Auditor),
        ] {
            assert!(r
                .kind()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
    }
}
