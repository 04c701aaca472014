//! Patterns shared by several schemas (upstream `schemas/common.py`).

pub const UUID_PATTERN: &str = "^[0-9a-fA-F-]{36}$";
pub const RC_PATTERN: &str = "^[A-Z0-9_]+$";
pub const CUSTOM_RC_PATTERN: &str = "^CUSTOM_[A-Z0-9_]+$";
pub const CUSTOM_TRAIT_PATTERN: &str = CUSTOM_RC_PATTERN;
pub const CONSUMER_TYPE_PATTERN: &str = RC_PATTERN;
pub const CONSUMER_TYPE_GET_PATTERN: &str = "^[A-Z0-9_]+$|^all|^unknown$";
/// Granular group suffixes before 1.33 and from 1.33.
pub const GROUP_PATTERN: &str = "[1-9][0-9]*";
pub const GROUP_PATTERN_1_33: &str = "[a-zA-Z0-9_-]{1,64}";
