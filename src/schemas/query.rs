//! The grammar of the filtering query parameters shared by
//! `GET /resource_providers` and `GET /allocation_candidates`: `member_of`,
//! `required` and `resources`, parsed into plain data with upstream's error
//! texts. Pure functions; answers to upstream's `util.py`
//! (`normalize_member_of_qs_params`, `normalize_traits_qs_params`,
//! `normalize_resources_qs_param`).

use uuid::Uuid;

use crate::errors::{ApiError, DomainError, ErrorCode};

/// A query string value that does not follow the grammar (400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub code: ErrorCode,
    pub detail: String,
}

impl QueryError {
    /// A 400 without a specific code (`placement.undefined_code`).
    pub fn new(detail: impl Into<String>) -> Self {
        QueryError::with_code(ErrorCode::Undefined, detail)
    }

    pub fn with_code(code: ErrorCode, detail: impl Into<String>) -> Self {
        QueryError {
            code,
            detail: detail.into(),
        }
    }

    /// `placement.query.bad_value`.
    pub fn bad_value(detail: impl Into<String>) -> Self {
        QueryError::with_code(ErrorCode::QueryBadValue, detail)
    }
}

impl From<QueryError> for ApiError {
    fn from(error: QueryError) -> Self {
        ApiError::bad_request(error.detail).with_code(error.code)
    }
}

impl From<QueryError> for DomainError {
    fn from(error: QueryError) -> Self {
        DomainError::BadRequest {
            code: error.code,
            detail: error.detail,
        }
    }
}

/// Aggregate membership: the provider must be in at least one aggregate of
/// every inner list, and in none of `forbidden`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberOf {
    pub all_of: Vec<Vec<Uuid>>,
    pub forbidden: Vec<Uuid>,
}

impl MemberOf {
    pub fn is_empty(&self) -> bool {
        self.all_of.is_empty() && self.forbidden.is_empty()
    }
}

/// Which `member_of` forms the microversion admits.
#[derive(Debug, Clone, Copy)]
pub struct MemberOfRules {
    /// Repeated parameters, ANDed (1.24).
    pub allow_multiple: bool,
    /// `!uuid` and `!in:` (1.32).
    pub allow_forbidden: bool,
}

/// Parses every value of `member_of{suffix}`.
pub fn parse_member_of(
    values: &[&str],
    suffix: &str,
    rules: MemberOfRules,
) -> Result<MemberOf, QueryError> {
    if !rules.allow_multiple && values.len() > 1 {
        return Err(QueryError::new(format!(
            "Multiple member_of{suffix} parameters are not supported"
        )));
    }
    let mut parsed = MemberOf::default();
    for value in values {
        let (required, forbidden) = parse_member_of_value(value)?;
        if !required.is_empty() {
            parsed.all_of.push(required);
        }
        if !forbidden.is_empty() {
            if !rules.allow_forbidden {
                return Err(QueryError::new(format!(
                    "Forbidden member_of{suffix} parameters are not supported in the specified microversion"
                )));
            }
            for uuid in forbidden {
                if !parsed.forbidden.contains(&uuid) {
                    parsed.forbidden.push(uuid);
                }
            }
        }
    }
    Ok(parsed)
}

/// One `member_of` value: `uuid`, `!uuid`, `in:a,b` or `!in:a,b`.
fn parse_member_of_value(value: &str) -> Result<(Vec<Uuid>, Vec<Uuid>), QueryError> {
    if value.contains(',') && !(value.starts_with("in:") || value.starts_with("!in:")) {
        return Err(QueryError::new(format!(
            "Multiple values for 'member_of' must be prefixed with the 'in:' or '!in:' keyword using the valid microversion. Got: {value}"
        )));
    }
    let (list, forbidden) = if let Some(rest) = value.strip_prefix("!in:") {
        (rest, true)
    } else if let Some(rest) = value.strip_prefix('!') {
        (rest, true)
    } else if let Some(rest) = value.strip_prefix("in:") {
        (rest, false)
    } else {
        (value, false)
    };
    let mut uuids = Vec::new();
    for item in list.split(',') {
        let uuid = parse_uuid_like(item).ok_or_else(|| {
            QueryError::new(format!(
                "Invalid query string parameters: Expected 'member_of' parameter to contain valid UUID(s). Got: {item}"
            ))
        })?;
        if !uuids.contains(&uuid) {
            uuids.push(uuid);
        }
    }
    if forbidden {
        Ok((Vec::new(), uuids))
    } else {
        Ok((uuids, Vec::new()))
    }
}

/// A UUID as oslo's `is_uuid_like` accepts it: any case, with or without
/// dashes, braces or a `urn:uuid:` prefix.
pub fn parse_uuid_like(text: &str) -> Option<Uuid> {
    Uuid::parse_str(text).ok()
}

/// Trait requirements: every inner list must have at least one trait of
/// the provider(s) (an inner list of one is a plain required trait), and
/// none of `forbidden` may be present.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequiredTraits {
    pub all_of: Vec<Vec<String>>,
    pub forbidden: Vec<String>,
}

impl RequiredTraits {
    pub fn is_empty(&self) -> bool {
        self.all_of.is_empty() && self.forbidden.is_empty()
    }

    /// Every trait name mentioned, required or forbidden, without repeats.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for name in self.all_of.iter().flatten().chain(&self.forbidden) {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        names
    }
}

/// Which `required` forms the microversion admits.
#[derive(Debug, Clone, Copy)]
pub struct TraitRules {
    /// `!TRAIT` (1.22).
    pub allow_forbidden: bool,
    /// `in:A,B` and repeated parameters (1.39).
    pub allow_any: bool,
}

/// Parses every value of `required{suffix}`. Before 1.39 only the last
/// value counts.
pub fn parse_required(values: &[&str], rules: TraitRules) -> Result<RequiredTraits, QueryError> {
    let considered = if rules.allow_any {
        values
    } else {
        &values[values.len().saturating_sub(1)..]
    };
    let mut parsed = RequiredTraits::default();
    for value in considered {
        let (all_of, forbidden) = parse_traits_value(value, rules)?;
        parsed.all_of.extend(all_of);
        for name in forbidden {
            if !parsed.forbidden.contains(&name) {
                parsed.forbidden.push(name);
            }
        }
    }
    Ok(parsed)
}

/// One traits value: `A,!B,C` or `in:A,B`. Returns the any-of groups and
/// the forbidden names.
pub fn parse_traits_value(
    value: &str,
    rules: TraitRules,
) -> Result<(Vec<Vec<String>>, Vec<String>), QueryError> {
    if let Some(rest) = value.strip_prefix("in:") {
        if !rules.allow_any {
            return Err(QueryError::new(format!(
                "Invalid query string parameters: The format 'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' only supported since microversion 1.39. Got: {value}"
            )));
        }
        let mut any_of: Vec<String> = Vec::new();
        for name in rest.split(',').map(str::trim) {
            if !any_of.iter().any(|known| known == name) {
                any_of.push(name.to_owned());
            }
        }
        if any_of.iter().any(String::is_empty) {
            return Err(QueryError::new(format!(
                "Invalid query string parameters: Expected 'required' parameter value of the form: in:HW_CPU_X86_VMX,CUSTOM_MAGIC. Got an empty trait in: {value}"
            )));
        }
        if any_of.iter().any(|name| name.starts_with('!')) {
            return Err(QueryError::new(format!(
                "Invalid query string parameters: The format 'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' does not support forbidden traits. Got: {value}"
            )));
        }
        return Ok((vec![any_of], Vec::new()));
    }
    let names: Vec<&str> = value.split(',').map(str::trim).collect();
    let mut forbidden: Vec<String> = Vec::new();
    for name in names.iter().filter(|name| name.starts_with('!')) {
        // Upstream strips any number of leading '!'.
        let stripped = name.trim_start_matches('!').to_owned();
        if !forbidden.contains(&stripped) {
            forbidden.push(stripped);
        }
    }
    if names.iter().any(|name| name.is_empty()) || forbidden.iter().any(String::is_empty) {
        let expected = if rules.allow_forbidden {
            "HW_CPU_X86_VMX,!CUSTOM_MAGIC"
        } else {
            "HW_CPU_X86_VMX,CUSTOM_MAGIC"
        };
        return Err(QueryError::new(format!(
            "Invalid query string parameters: Expected 'required' parameter value of the form: {expected}. Got an empty trait in: {value}"
        )));
    }
    if !forbidden.is_empty() && !rules.allow_forbidden {
        return Err(QueryError::new(format!(
            "Invalid query string parameters: Expected 'required' parameter value of the form: HW_CPU_X86_VMX,CUSTOM_MAGIC. Got: {value}"
        )));
    }
    let required = names
        .iter()
        .filter(|name| !name.starts_with('!'))
        .map(|name| vec![(*name).to_owned()])
        .collect();
    Ok((required, forbidden))
}

/// Parses `in_tree{suffix}`: one provider uuid (surrounding blanks
/// ignored).
pub fn parse_in_tree(value: &str) -> Result<Uuid, QueryError> {
    parse_uuid_like(value.trim()).ok_or_else(|| {
        QueryError::new(format!(
            "Invalid query string parameters: Expected 'in_tree' parameter to be a format of uuid. Got: {value}"
        ))
    })
}

/// Parses `root_required`: given once, `A,!B` with no `in:` form; a trait
/// both required and forbidden is refused. Returns (required, forbidden).
pub fn parse_root_required(values: &[&str]) -> Result<(Vec<String>, Vec<String>), QueryError> {
    let [value] = values else {
        return Err(QueryError::with_code(
            ErrorCode::QueryDuplicateKey,
            "Query parameter 'root_required' may be specified only once.",
        ));
    };
    let rules = TraitRules {
        allow_forbidden: true,
        allow_any: false,
    };
    let (all_of, forbidden) = parse_traits_value(value, rules)?;
    let mut required: Vec<String> = Vec::new();
    for name in all_of.into_iter().flatten() {
        if !required.contains(&name) {
            required.push(name);
        }
    }
    let conflicts: Vec<&str> = required
        .iter()
        .filter(|name| forbidden.contains(name))
        .map(String::as_str)
        .collect();
    if !conflicts.is_empty() {
        return Err(QueryError::bad_value(format!(
            "Conflicting required and forbidden traits found in root_required: {}",
            conflicts.join(", ")
        )));
    }
    Ok((required, forbidden))
}

/// Parses every `same_subtree` value (`S1,S2,...`) into lists of group
/// suffixes without repeats; the unsuffixed group cannot take part.
pub fn parse_same_subtree(values: &[&str]) -> Result<Vec<Vec<String>>, QueryError> {
    let mut parsed = Vec::new();
    for value in values {
        let mut suffixes: Vec<String> = Vec::new();
        for suffix in value.split(',').map(str::trim) {
            if suffix.is_empty() {
                return Err(QueryError::bad_value(
                    "Empty string (unsuffixed group) can not be specified in `same_subtree` ",
                ));
            }
            if !suffixes.iter().any(|known| known == suffix) {
                suffixes.push(suffix.to_owned());
            }
        }
        parsed.push(suffixes);
    }
    Ok(parsed)
}

const RESOURCES_FORM: &str = "Badly formed resources parameter. Expected resources query string parameter in form: ?resources=VCPU:2,MEMORY_MB:1024.";

/// Parses `resources=RC:amount,RC:amount` into (class name, amount) pairs
/// in first-mention order; a class named twice keeps its last amount.
pub fn parse_resources(value: &str) -> Result<Vec<(String, i64)>, QueryError> {
    if value.trim().is_empty() {
        return Err(QueryError::new(format!(
            "{RESOURCES_FORM} Got: empty string."
        )));
    }
    let mut resources: Vec<(String, i64)> = Vec::new();
    for item in value.split(',') {
        let mut parts = item.split(':');
        let (Some(name), Some(amount), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(QueryError::new(format!("{RESOURCES_FORM} Got: {item}.")));
        };
        let amount: i64 = amount.trim().parse().map_err(|_| {
            QueryError::new(format!(
                "Requested resource {name} expected positive integer amount. Got: {amount}."
            ))
        })?;
        if amount < 1 {
            return Err(QueryError::new(format!(
                "Requested resource {name} requires amount >= 1. Got: {amount}."
            )));
        }
        match resources.iter_mut().find(|(known, _)| known == name) {
            Some(entry) => entry.1 = amount,
            None => resources.push((name.to_owned(), amount)),
        }
    }
    Ok(resources)
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    const A: &str = "83a3d69d-8920-48e2-8914-cadfd8fa2f91";
    const B: &str = "99652f11-9f77-46b9-80b7-4b1989be9f8c";

    fn uuid(text: &str) -> Uuid {
        Uuid::parse_str(text).unwrap()
    }

    const LATEST_MEMBER_OF: MemberOfRules = MemberOfRules {
        allow_multiple: true,
        allow_forbidden: true,
    };
    const LATEST_TRAITS: TraitRules = TraitRules {
        allow_forbidden: true,
        allow_any: true,
    };

    #[test]
    fn member_of_forms() {
        let plain = A.to_owned();
        let any = format!("in:{A},{B}");
        let not_any = format!("!in:{A},{B}");
        let parsed = parse_member_of(&[&plain, &any, &not_any], "", LATEST_MEMBER_OF).unwrap();
        assert_eq!(parsed.all_of, vec![vec![uuid(A)], vec![uuid(A), uuid(B)]]);
        assert_eq!(parsed.forbidden, vec![uuid(A), uuid(B)]);
        let single_forbidden = format!("!{A}");
        let parsed = parse_member_of(&[&single_forbidden], "", LATEST_MEMBER_OF).unwrap();
        assert!(parsed.all_of.is_empty());
        assert_eq!(parsed.forbidden, vec![uuid(A)]);
    }

    #[test]
    fn member_of_errors() {
        let rules = MemberOfRules {
            allow_multiple: false,
            allow_forbidden: false,
        };
        let error = parse_member_of(&[A, B], "", rules).unwrap_err();
        assert_eq!(
            error.detail,
            "Multiple member_of parameters are not supported"
        );
        let forbidden = format!("!{A}");
        let error = parse_member_of(&[&forbidden], "1", rules).unwrap_err();
        assert_eq!(
            error.detail,
            "Forbidden member_of1 parameters are not supported in the specified microversion"
        );
        let error = parse_member_of(&["not a uuid"], "", LATEST_MEMBER_OF).unwrap_err();
        assert!(error
            .detail
            .starts_with("Invalid query string parameters: Expected 'member_of' parameter to contain valid UUID(s)."));
        let mixed = format!("in:{A},!{B}");
        assert!(
            parse_member_of(&[&mixed], "", LATEST_MEMBER_OF)
                .unwrap_err()
                .detail
                .contains("valid UUID(s). Got: !")
        );
        let bare_list = format!("{A},{B}");
        assert!(
            parse_member_of(&[&bare_list], "", LATEST_MEMBER_OF)
                .unwrap_err()
                .detail
                .starts_with("Multiple values for 'member_of' must be prefixed")
        );
    }

    #[test]
    fn dashless_uuids_are_accepted() {
        assert_eq!(
            parse_uuid_like("83a3d69d892048e28914cadfd8fa2f91"),
            Some(uuid(A))
        );
    }

    #[test]
    fn required_forms() {
        let parsed = parse_required(&["in:A,B", "C,!D", "!!E"], LATEST_TRAITS).unwrap();
        assert_eq!(
            parsed.all_of,
            vec![vec!["A".to_owned(), "B".to_owned()], vec!["C".to_owned()]]
        );
        assert_eq!(parsed.forbidden, vec!["D".to_owned(), "E".to_owned()]);
        assert_eq!(parsed.names(), vec!["A", "B", "C", "D", "E"]);
    }

    #[test]
    fn required_before_1_39_takes_the_last_value() {
        let rules = TraitRules {
            allow_forbidden: true,
            allow_any: false,
        };
        let parsed = parse_required(&["A", "B"], rules).unwrap();
        assert_eq!(parsed.all_of, vec![vec!["B".to_owned()]]);
        let error = parse_required(&["in:A,B"], rules).unwrap_err();
        assert!(
            error
                .detail
                .contains("only supported since microversion 1.39")
        );
    }

    #[test]
    fn required_errors() {
        let old = TraitRules {
            allow_forbidden: false,
            allow_any: false,
        };
        assert_eq!(
            parse_required(&["!STORAGE_DISK_SSD"], old)
                .unwrap_err()
                .detail,
            "Invalid query string parameters: Expected 'required' parameter value of the form: HW_CPU_X86_VMX,CUSTOM_MAGIC. Got: !STORAGE_DISK_SSD"
        );
        assert!(
            parse_required(&[""], old)
                .unwrap_err()
                .detail
                .contains("form: HW_CPU_X86_VMX,CUSTOM_MAGIC. Got an empty trait in: ")
        );
        assert!(
            parse_required(&["A,,B"], LATEST_TRAITS)
                .unwrap_err()
                .detail
                .contains("form: HW_CPU_X86_VMX,!CUSTOM_MAGIC. Got an empty trait")
        );
        assert!(
            parse_required(&["in:A,!B"], LATEST_TRAITS)
                .unwrap_err()
                .detail
                .contains("does not support forbidden traits")
        );
        assert!(
            parse_required(&["in:A,"], LATEST_TRAITS)
                .unwrap_err()
                .detail
                .contains("in:HW_CPU_X86_VMX,CUSTOM_MAGIC. Got an empty trait in: in:A,")
        );
    }

    #[test]
    fn in_tree_root_required_and_same_subtree() {
        assert_eq!(parse_in_tree(&format!(" {A} ")).unwrap(), uuid(A));
        assert_eq!(
            parse_in_tree("nope").unwrap_err().detail,
            "Invalid query string parameters: Expected 'in_tree' parameter to be a format of uuid. Got: nope"
        );
        assert_eq!(
            parse_root_required(&["A,!B,A"]).unwrap(),
            (vec!["A".to_owned()], vec!["B".to_owned()])
        );
        let duplicate = parse_root_required(&["A", "B"]).unwrap_err();
        assert_eq!(duplicate.code, ErrorCode::QueryDuplicateKey);
        let conflict = parse_root_required(&["A,B,!A"]).unwrap_err();
        assert_eq!(conflict.code, ErrorCode::QueryBadValue);
        assert_eq!(
            conflict.detail,
            "Conflicting required and forbidden traits found in root_required: A"
        );
        assert!(
            parse_root_required(&["in:A,B"])
                .unwrap_err()
                .detail
                .contains("only supported since microversion 1.39")
        );
        assert_eq!(
            parse_same_subtree(&["a, b,a", "c"]).unwrap(),
            vec![vec!["a".to_owned(), "b".to_owned()], vec!["c".to_owned()]]
        );
        assert_eq!(
            parse_same_subtree(&["a,"]).unwrap_err().code,
            ErrorCode::QueryBadValue
        );
    }

    #[test]
    fn resources_forms_and_errors() {
        assert_eq!(
            parse_resources("VCPU:2,DISK_GB:50,VCPU:3").unwrap(),
            vec![("VCPU".to_owned(), 3), ("DISK_GB".to_owned(), 50)]
        );
        assert!(
            parse_resources("")
                .unwrap_err()
                .detail
                .ends_with("Got: empty string.")
        );
        assert!(
            parse_resources("VCPU")
                .unwrap_err()
                .detail
                .ends_with("Got: VCPU.")
        );
        assert!(
            parse_resources("DISK_GB:500,")
                .unwrap_err()
                .detail
                .ends_with("Got: .")
        );
        assert_eq!(
            parse_resources("VCPU:fred").unwrap_err().detail,
            "Requested resource VCPU expected positive integer amount. Got: fred."
        );
        assert_eq!(
            parse_resources("VCPU:-2").unwrap_err().detail,
            "Requested resource VCPU requires amount >= 1. Got: -2."
        );
    }
}
