//! `GET /allocation_candidates`: the query schemas per microversion, the
//! parsing of request groups and request-wide parameters into names (not
//! yet resolved against the `World`), and the response views. Answers to
//! upstream's `schemas/allocation_candidate.py`, `lib.py` (`RequestGroup`,
//! `RequestWideParams`) and the `_transform_*` functions of
//! `handlers/allocation_candidate.py`.

use std::sync::LazyLock;

use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::errors::ErrorCode;
use crate::http::microversion::{self as mv, Microversion};
use crate::schemas::common::{GROUP_PATTERN, GROUP_PATTERN_1_33};
use crate::schemas::query::{
    self as grammar, MemberOf, MemberOfRules, QueryError, RequiredTraits, TraitRules,
};
use crate::view::request::{AllocationRequest, Candidates};
use crate::view::world::{ClassId, Provider, ProviderId, TraitId, World};

// --- query schemas ----------------------------------------------------------

fn string() -> Value {
    json!({"type": "string"})
}

fn string_list_type() -> Value {
    json!({"type": ["string"]})
}

fn limit() -> Value {
    json!({
        "type": ["integer", "string"],
        "pattern": "^[1-9][0-9]*$",
        "minimum": 1,
        "minLength": 1
    })
}

/// The schemas before 1.25: fixed parameter names, `resources` required.
fn ungrouped(properties: &[(&str, Value)]) -> Value {
    let mut map = Map::new();
    for (key, value) in properties {
        map.insert((*key).to_owned(), value.clone());
    }
    json!({
        "type": "object",
        "properties": map,
        "required": ["resources"],
        "additionalProperties": false
    })
}

/// The schemas from 1.25: request groups as pattern properties.
fn grouped(properties: &[(&str, Value)], prefixes: &[&str], group_pattern: &str) -> Value {
    let mut map = Map::new();
    for (key, value) in properties {
        map.insert((*key).to_owned(), value.clone());
    }
    let mut patterns = Map::new();
    for prefix in prefixes {
        patterns.insert(format!("^{prefix}({group_pattern})?$"), string());
    }
    json!({
        "type": "object",
        "properties": map,
        "additionalProperties": false,
        "patternProperties": patterns
    })
}

const GROUP_KEYS_1_25: [&str; 3] = ["resources", "required", "member_of"];
const GROUP_KEYS_1_31: [&str; 4] = ["resources", "required", "member_of", "in_tree"];

fn group_policy() -> Value {
    json!({"type": "string", "enum": ["none", "isolate"]})
}

static QUERY_1_10: LazyLock<Value> = LazyLock::new(|| ungrouped(&[("resources", string())]));
static QUERY_1_16: LazyLock<Value> =
    LazyLock::new(|| ungrouped(&[("resources", string()), ("limit", limit())]));
static QUERY_1_17: LazyLock<Value> = LazyLock::new(|| {
    ungrouped(&[
        ("resources", string()),
        ("limit", limit()),
        ("required", string_list_type()),
    ])
});
static QUERY_1_21: LazyLock<Value> = LazyLock::new(|| {
    ungrouped(&[
        ("resources", string()),
        ("limit", limit()),
        ("required", string_list_type()),
        ("member_of", string_list_type()),
    ])
});
static QUERY_1_25: LazyLock<Value> = LazyLock::new(|| {
    grouped(
        &[("limit", limit()), ("group_policy", group_policy())],
        &GROUP_KEYS_1_25,
        GROUP_PATTERN,
    )
});
static QUERY_1_31: LazyLock<Value> = LazyLock::new(|| {
    grouped(
        &[("limit", limit()), ("group_policy", group_policy())],
        &GROUP_KEYS_1_31,
        GROUP_PATTERN,
    )
});
static QUERY_1_33: LazyLock<Value> = LazyLock::new(|| {
    grouped(
        &[("limit", limit()), ("group_policy", group_policy())],
        &GROUP_KEYS_1_31,
        GROUP_PATTERN_1_33,
    )
});
static QUERY_1_35: LazyLock<Value> = LazyLock::new(|| {
    grouped(
        &[
            ("limit", limit()),
            ("group_policy", group_policy()),
            ("root_required", string_list_type()),
        ],
        &GROUP_KEYS_1_31,
        GROUP_PATTERN_1_33,
    )
});
static QUERY_1_36: LazyLock<Value> = LazyLock::new(|| {
    grouped(
        &[
            ("limit", limit()),
            ("group_policy", group_policy()),
            ("root_required", string_list_type()),
            ("same_subtree", string_list_type()),
        ],
        &GROUP_KEYS_1_31,
        GROUP_PATTERN_1_33,
    )
});

/// The query schema of `GET /allocation_candidates` at `version`.
pub fn list_query_schema(version: Microversion) -> &'static Value {
    if version.at_least(mv::SAME_SUBTREE) {
        &QUERY_1_36
    } else if version.at_least(mv::ROOT_REQUIRED) {
        &QUERY_1_35
    } else if version.at_least(mv::STRING_SUFFIXES) {
        &QUERY_1_33
    } else if version.at_least(mv::CANDIDATES_IN_TREE) {
        &QUERY_1_31
    } else if version.at_least(mv::GRANULAR_REQUESTS) {
        &QUERY_1_25
    } else if version.at_least(mv::CANDIDATES_MEMBER_OF) {
        &QUERY_1_21
    } else if version.at_least(mv::CANDIDATES_REQUIRED) {
        &QUERY_1_17
    } else if version.at_least(mv::CANDIDATES_LIMIT) {
        &QUERY_1_16
    } else {
        &QUERY_1_10
    }
}

// --- parsed query -------------------------------------------------------------

/// One request group as the query names it (`suffix` empty for the
/// unsuffixed group).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupQuery {
    pub suffix: String,
    pub resources: Vec<(String, i64)>,
    pub required: RequiredTraits,
    pub member_of: MemberOf,
    pub in_tree: Option<Uuid>,
}

impl GroupQuery {
    fn new(suffix: &str) -> GroupQuery {
        GroupQuery {
            suffix: suffix.to_owned(),
            ..GroupQuery::default()
        }
    }
}

/// `group_policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupPolicyQuery {
    None,
    Isolate,
}

/// The whole query, validated but with names not yet resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CandidatesQuery {
    /// In order of first mention in the query string.
    pub groups: Vec<GroupQuery>,
    pub limit: Option<usize>,
    pub group_policy: Option<GroupPolicyQuery>,
    pub root_required: Vec<String>,
    pub root_forbidden: Vec<String>,
    pub same_subtree: Vec<Vec<String>>,
}

const GROUP_PREFIXES: [&str; 4] = ["resources", "required", "member_of", "in_tree"];

/// Splits `resources1` into (`resources`, `1`) when the key names a group
/// parameter at this version (numeric suffixes before 1.33).
fn group_key(key: &str, verbose_suffix: bool) -> Option<(&'static str, &str)> {
    GROUP_PREFIXES.iter().find_map(|prefix| {
        let suffix = key.strip_prefix(prefix)?;
        let valid = suffix.is_empty()
            || if verbose_suffix {
                suffix.len() <= 64
                    && suffix
                        .bytes()
                        .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
            } else {
                suffix.bytes().all(|byte| byte.is_ascii_digit()) && !suffix.starts_with('0')
            };
        valid.then_some((*prefix, suffix))
    })
}

fn all_values<'a>(pairs: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(name, _)| name == key)
        .map(|(_, value)| value.as_str())
        .collect()
}

/// A Python list of strings as `str(list)` shows it: `['a', 'b']`.
fn python_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = items.into_iter().map(|item| format!("'{item}'")).collect();
    format!("[{}]", quoted.join(", "))
}

/// Parses the request-wide parameters and the request groups of a query
/// that passed `list_query_schema(version)`, with upstream's checks and
/// texts, in upstream's order (request-wide first, then the groups in
/// query order, then the checks across groups).
pub fn parse_candidates_query(
    pairs: &[(String, String)],
    version: Microversion,
) -> Result<CandidatesQuery, QueryError> {
    let mut parsed = CandidatesQuery::default();

    // Request-wide parameters: the first `limit` and `group_policy` count.
    if let Some(limit) = all_values(pairs, "limit").first() {
        // The schema has checked the last value only.
        let limit: usize = limit.trim().parse().map_err(|_| {
            QueryError::new(format!(
                "Invalid query string parameters: '{limit}' does not match '^[1-9][0-9]*$'"
            ))
        })?;
        parsed.limit = Some(limit);
    }
    if let Some(policy) = all_values(pairs, "group_policy").first() {
        parsed.group_policy = Some(if *policy == "isolate" {
            GroupPolicyQuery::Isolate
        } else {
            GroupPolicyQuery::None
        });
    }
    let root_required = all_values(pairs, "root_required");
    if !root_required.is_empty() {
        (parsed.root_required, parsed.root_forbidden) =
            grammar::parse_root_required(&root_required)?;
    }
    parsed.same_subtree = grammar::parse_same_subtree(&all_values(pairs, "same_subtree"))?;

    // Request groups, in order of first mention.
    let verbose_suffix = version.at_least(mv::STRING_SUFFIXES);
    let trait_rules = TraitRules {
        allow_forbidden: version.at_least(mv::FORBIDDEN_TRAITS),
        allow_any: version.at_least(mv::ANY_TRAITS),
    };
    let member_of_rules = MemberOfRules {
        allow_multiple: version.at_least(mv::MULTIPLE_MEMBER_OF),
        allow_forbidden: version.at_least(mv::FORBIDDEN_AGGREGATES),
    };
    for (key, value) in pairs {
        let Some((prefix, suffix)) = group_key(key, verbose_suffix) else {
            continue;
        };
        let index = match parsed
            .groups
            .iter()
            .position(|group| group.suffix == suffix)
        {
            Some(index) => index,
            None => {
                parsed.groups.push(GroupQuery::new(suffix));
                parsed.groups.len() - 1
            }
        };
        let group = &mut parsed.groups[index];
        match prefix {
            "resources" => group.resources = grammar::parse_resources(value)?,
            "required" => {
                group.required = grammar::parse_required(&all_values(pairs, key), trait_rules)?;
            }
            "member_of" => {
                group.member_of =
                    grammar::parse_member_of(&all_values(pairs, key), suffix, member_of_rules)?;
            }
            _ => group.in_tree = Some(grammar::parse_in_tree(value)?),
        }
    }

    if version.at_least(mv::SAME_SUBTREE) {
        check_resourceless_groups(&parsed)?;
    } else {
        check_for_orphans(&parsed.groups)?;
    }
    if trait_rules.allow_forbidden {
        check_forbidden(&parsed.groups)?;
    }
    let granular = parsed
        .groups
        .iter()
        .filter(|group| !group.suffix.is_empty())
        .count();
    if parsed.group_policy.is_none() && granular > 1 {
        return Err(QueryError::new(
            "The \"group_policy\" parameter is required when specifying more than one \"resources{N}\" parameter.",
        ));
    }
    Ok(parsed)
}

/// From 1.36 a group may be resourceless when `same_subtree` names it.
fn check_resourceless_groups(parsed: &CandidatesQuery) -> Result<(), QueryError> {
    let resourceless: Vec<&str> = parsed
        .groups
        .iter()
        .filter(|group| group.resources.is_empty())
        .map(|group| group.suffix.as_str())
        .collect();
    if resourceless.len() == parsed.groups.len() {
        return Err(QueryError::with_code(
            ErrorCode::QueryMissingValue,
            "There must be at least one resources or resources[$S] parameter.",
        ));
    }
    let mut in_subtrees: Vec<&str> = Vec::new();
    for suffix in parsed.same_subtree.iter().flatten() {
        if !in_subtrees.contains(&suffix.as_str()) {
            in_subtrees.push(suffix);
        }
    }
    let unnamed: Vec<&str> = resourceless
        .iter()
        .copied()
        .filter(|suffix| !in_subtrees.contains(suffix))
        .collect();
    if !unnamed.is_empty() {
        return Err(QueryError::bad_value(format!(
            "Resourceless suffixed group request should be specified in `same_subtree` query param: bad group(s) - {}.",
            python_list(unnamed)
        )));
    }
    let unknown: Vec<&str> = in_subtrees
        .iter()
        .copied()
        .filter(|suffix| !parsed.groups.iter().any(|group| group.suffix == *suffix))
        .collect();
    if !unknown.is_empty() {
        return Err(QueryError::bad_value(format!(
            "Real suffixes should be specified in `same_subtree`: {} not found in {}.",
            python_list(unknown),
            python_list(parsed.groups.iter().map(|group| group.suffix.as_str()))
        )));
    }
    Ok(())
}

/// Before 1.36 every group needs resources.
fn check_for_orphans(groups: &[GroupQuery]) -> Result<(), QueryError> {
    let orphans: Vec<String> = groups
        .iter()
        .filter(|group| !group.required.all_of.is_empty() && group.resources.is_empty())
        .map(|group| format!("required{}", group.suffix))
        .collect();
    if !orphans.is_empty() {
        return Err(QueryError::new(format!(
            "All traits parameters must be associated with resources.  Found the following orphaned traits keys: {}",
            orphans.join(", ")
        )));
    }
    let orphans: Vec<String> = groups
        .iter()
        .filter(|group| !group.member_of.is_empty() && group.resources.is_empty())
        .map(|group| format!("member_of{}", group.suffix))
        .collect();
    if !orphans.is_empty() {
        return Err(QueryError::new(format!(
            "All member_of parameters must be associated with resources. Found the following orphaned member_of keys: {}",
            orphans.join(", ")
        )));
    }
    if groups.iter().any(|group| group.resources.is_empty()) {
        return Err(QueryError::new(
            "All request groups must specify resources.",
        ));
    }
    if groups.is_empty() {
        return Err(QueryError::new(
            "At least one request group (`resources` or `resources{$S}`) is required.",
        ));
    }
    Ok(())
}

/// A required entry whose traits are all forbidden in the same group can
/// never be satisfied.
fn check_forbidden(groups: &[GroupQuery]) -> Result<(), QueryError> {
    let mut conflicts: Vec<String> = Vec::new();
    for group in groups {
        for any_of in &group.required.all_of {
            if any_of
                .iter()
                .all(|name| group.required.forbidden.contains(name))
            {
                let mut names: Vec<&str> = any_of.iter().map(String::as_str).collect();
                names.sort_unstable();
                names.dedup();
                conflicts.push(format!("required{}: ({})", group.suffix, names.join(", ")));
            }
        }
    }
    if conflicts.is_empty() {
        return Ok(());
    }
    conflicts.sort();
    Err(QueryError::new(format!(
        "Conflicting required and forbidden traits found in the following traits keys: {}",
        conflicts.join(", ")
    )))
}

// --- views ------------------------------------------------------------------------

/// The parts of the response a microversion shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseForm {
    /// 1.12: each allocation request is a dict by provider uuid (the body
    /// of a `PUT /allocations/{consumer_uuid}`); before, a list.
    pub dict: bool,
    /// 1.34: `mappings` in each allocation request.
    pub mappings: bool,
    /// 1.27: every class of a provider in its summary; before, only the
    /// requested ones.
    pub all_classes: bool,
    /// 1.17: `traits` in summaries.
    pub traits: bool,
    /// 1.29: `parent_provider_uuid` and `root_provider_uuid` in summaries.
    pub tree: bool,
}

impl ResponseForm {
    pub fn at(version: Microversion) -> ResponseForm {
        ResponseForm {
            dict: version.at_least(mv::ALLOCATIONS_DICT),
            mappings: version.at_least(mv::MAPPINGS),
            all_classes: version.at_least(mv::ALL_CLASSES_IN_SUMMARIES),
            traits: version.at_least(mv::CANDIDATES_REQUIRED),
            tree: version.at_least(mv::NESTED_CANDIDATES),
        }
    }
}

/// The response body of `GET /allocation_candidates`, written straight
/// from the engine's answer and the `World` it was computed on (under the
/// same read guard) as compact JSON, without building an owned copy or
/// going through a generic serialiser: a large answer is mostly uuids and
/// a few class names repeated, and writing those directly is what makes
/// it cheap.
pub struct CandidatesBody<'a> {
    world: &'a World,
    candidates: &'a Candidates,
    form: ResponseForm,
    /// The classes summaries show before 1.27, sorted.
    requested: Vec<ClassId>,
}

impl<'a> CandidatesBody<'a> {
    /// `requested` names the classes asked for (shown in summaries before
    /// 1.27).
    pub fn new<'n>(
        world: &'a World,
        candidates: &'a Candidates,
        form: ResponseForm,
        requested: impl IntoIterator<Item = &'n str>,
    ) -> CandidatesBody<'a> {
        let mut requested: Vec<ClassId> = requested
            .into_iter()
            .filter_map(|name| world.class_id(name))
            .collect();
        requested.sort_unstable();
        requested.dedup();
        CandidatesBody {
            world,
            candidates,
            form,
            requested,
        }
    }

    /// The body as JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        let requests = &self.candidates.allocation_requests;
        let summaries = &self.candidates.summary_providers;
        let per_request = 120 + requests.first().map_or(0, |r| 100 * r.allocations.len());
        let mut out = Json(Vec::with_capacity(
            64 + per_request * requests.len() + 320 * summaries.len(),
        ));
        let mut names = NameCache::new(self.world);
        out.raw(b"{\"allocation_requests\":[");
        for (index, request) in requests.iter().enumerate() {
            if index > 0 {
                out.raw(b",");
            }
            if self.form.dict {
                self.dict_request(&mut out, &mut names, request);
            } else {
                self.list_request(&mut out, &mut names, request);
            }
        }
        out.raw(b"],\"provider_summaries\":{");
        let mut first = true;
        for id in summaries {
            if let Some(provider) = self.world.provider(*id) {
                if !first {
                    out.raw(b",");
                }
                first = false;
                self.summary(&mut out, &mut names, provider);
            }
        }
        out.raw(b"}}");
        out.0
    }

    fn uuid(&self, id: ProviderId) -> Option<Uuid> {
        self.world.provider(id).map(|provider| provider.uuid)
    }

    /// The allocations of one request grouped by provider, skipping
    /// providers the world no longer has.
    fn by_provider(
        &self,
        request: &AllocationRequest,
    ) -> impl Iterator<Item = (Uuid, &'a [(ProviderId, ClassId, i64)])> {
        let candidates: &'a Candidates = self.candidates;
        candidates
            .allocations(request)
            .chunk_by(|a, b| a.0 == b.0)
            .filter_map(|amounts| Some((self.uuid(amounts.first()?.0)?, amounts)))
    }

    /// `{"VCPU":1,...}`.
    fn amounts(out: &mut Json, names: &mut NameCache<'_>, amounts: &[(ProviderId, ClassId, i64)]) {
        out.raw(b"{");
        for (index, (_, class, amount)) in amounts.iter().enumerate() {
            if index > 0 {
                out.raw(b",");
            }
            out.raw(names.class(*class));
            out.raw(b":");
            out.int(*amount);
        }
        out.raw(b"}");
    }

    /// From 1.12: `{"allocations":{uuid:{"resources":{...}}},"mappings":{...}}`,
    /// the body of a `PUT /allocations/{consumer_uuid}`.
    fn dict_request(&self, out: &mut Json, names: &mut NameCache<'_>, request: &AllocationRequest) {
        out.raw(b"{\"allocations\":{");
        for (index, (uuid, amounts)) in self.by_provider(request).enumerate() {
            if index > 0 {
                out.raw(b",");
            }
            out.uuid(uuid);
            out.raw(b":{\"resources\":");
            Self::amounts(out, names, amounts);
            out.raw(b"}");
        }
        out.raw(b"}");
        if self.form.mappings {
            out.raw(b",\"mappings\":{");
            let mappings = self.candidates.mappings(request);
            for (index, group) in mappings.chunk_by(|a, b| a.0 == b.0).enumerate() {
                let suffix = group
                    .first()
                    .and_then(|(suffix, _)| self.candidates.suffixes.get(*suffix))
                    .map_or("", String::as_str);
                if index > 0 {
                    out.raw(b",");
                }
                out.string(suffix);
                out.raw(b":[");
                let mut first = true;
                for (_, provider) in group {
                    if let Some(uuid) = self.uuid(*provider) {
                        if !first {
                            out.raw(b",");
                        }
                        first = false;
                        out.uuid(uuid);
                    }
                }
                out.raw(b"]");
            }
            out.raw(b"}");
        }
        out.raw(b"}");
    }

    /// Before 1.12: `{"allocations":[{"resource_provider":{"uuid":...},
    /// "resources":{...}},...]}`.
    fn list_request(&self, out: &mut Json, names: &mut NameCache<'_>, request: &AllocationRequest) {
        out.raw(b"{\"allocations\":[");
        for (index, (uuid, amounts)) in self.by_provider(request).enumerate() {
            if index > 0 {
                out.raw(b",");
            }
            out.raw(b"{\"resource_provider\":{\"uuid\":");
            out.uuid(uuid);
            out.raw(b"},\"resources\":");
            Self::amounts(out, names, amounts);
            out.raw(b"}");
        }
        out.raw(b"]}");
    }

    /// `uuid:{"resources":{"VCPU":{"capacity":8,"used":2},...},"traits":[...],
    /// "parent_provider_uuid":...,"root_provider_uuid":...}`: `traits` from
    /// 1.17, the tree uuids from 1.29.
    fn summary(&self, out: &mut Json, names: &mut NameCache<'_>, provider: &Provider) {
        out.uuid(provider.uuid);
        out.raw(b":{\"resources\":{");
        let mut first = true;
        for capacity in provider.capacities.iter() {
            let class = &capacity.class;
            if !self.form.all_classes && self.requested.binary_search(class).is_err() {
                continue;
            }
            if !first {
                out.raw(b",");
            }
            first = false;
            out.raw(names.class(*class));
            out.raw(b":{\"capacity\":");
            // Truncated as upstream's int().
            out.int(capacity.limits.capacity() as i64);
            out.raw(b",\"used\":");
            out.int(capacity.used);
            out.raw(b"}");
        }
        out.raw(b"}");
        if self.form.traits {
            out.raw(b",\"traits\":[");
            for (index, id) in provider.traits.iter().enumerate() {
                if index > 0 {
                    out.raw(b",");
                }
                out.raw(names.trait_name(*id));
            }
            out.raw(b"]");
        }
        if self.form.tree {
            out.raw(b",\"parent_provider_uuid\":");
            match provider.parent.and_then(|parent| self.uuid(parent)) {
                Some(uuid) => out.uuid(uuid),
                None => out.raw(b"null"),
            }
            if let Some(root) = self.uuid(provider.root) {
                out.raw(b",\"root_provider_uuid\":");
                out.uuid(root);
            }
        }
        out.raw(b"}");
    }
}

/// A JSON text being written.
struct Json(Vec<u8>);

impl Json {
    fn raw(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    /// A uuid as a string (hex digits and hyphens need no escaping).
    fn uuid(&mut self, uuid: Uuid) {
        let mut buffer = Uuid::encode_buffer();
        let text = uuid.hyphenated().encode_lower(&mut buffer);
        self.0.push(b'"');
        self.0.extend_from_slice(text.as_bytes());
        self.0.push(b'"');
    }

    fn int(&mut self, value: i64) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut rest = value.unsigned_abs();
        loop {
            at -= 1;
            digits[at] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        if value < 0 {
            self.0.push(b'-');
        }
        self.0.extend_from_slice(&digits[at..]);
    }

    fn string(&mut self, text: &str) {
        self.0.extend_from_slice(&quoted(text));
    }
}

/// `text` as a JSON string, quotes included.
fn quoted(text: &str) -> Vec<u8> {
    let plain = text
        .bytes()
        .all(|byte| byte >= 0x20 && byte != b'"' && byte != b'\\');
    if plain {
        let mut out = Vec::with_capacity(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
        out
    } else {
        serde_json::to_vec(text).unwrap_or_else(|_| b"\"\"".to_vec())
    }
}

/// Class and trait names met so far in one response, as JSON strings:
/// few, and each written many times.
struct NameCache<'a> {
    world: &'a World,
    classes: Vec<(ClassId, Vec<u8>)>,
    traits: Vec<(TraitId, Vec<u8>)>,
    /// Scratch for a name past the cache's size.
    spare: Vec<u8>,
}

impl<'a> NameCache<'a> {
    /// Linear lookups stay cheap up to this many names; past it, names
    /// are looked up in the world's own index each time.
    const SMALL: usize = 32;

    fn new(world: &'a World) -> NameCache<'a> {
        NameCache {
            world,
            classes: Vec::new(),
            traits: Vec::new(),
            spare: Vec::new(),
        }
    }

    fn lookup<'c>(
        cache: &'c mut Vec<(i32, Vec<u8>)>,
        spare: &'c mut Vec<u8>,
        id: i32,
        name: impl FnOnce(i32) -> Option<&'a str>,
    ) -> &'c [u8] {
        if let Some(at) = cache.iter().position(|(known, _)| *known == id) {
            return &cache[at].1;
        }
        let text = quoted(name(id).unwrap_or_default());
        if cache.len() < Self::SMALL {
            cache.push((id, text));
            return cache.last().map_or(&[], |(_, text)| text.as_slice());
        }
        *spare = text;
        spare
    }

    fn class(&mut self, id: ClassId) -> &[u8] {
        let world = self.world;
        Self::lookup(&mut self.classes, &mut self.spare, id, |id| {
            world.class_name(id)
        })
    }

    fn trait_name(&mut self, id: TraitId) -> &[u8] {
        let world = self.world;
        Self::lookup(&mut self.traits, &mut self.spare, id, |id| {
            world.trait_name(id)
        })
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    #[test]
    fn json_numbers_uuids_and_strings() {
        let mut out = Json(Vec::new());
        for value in [0, 7, 10, 256, -1, -90, 1_234_567_890, i64::MAX, i64::MIN] {
            out.raw(b" ");
            out.int(value);
        }
        let uuid = Uuid::parse_str("0A1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9").unwrap();
        out.raw(b" ");
        out.uuid(uuid);
        out.raw(b" ");
        out.string("CUSTOM_A\"b\n");
        assert_eq!(
            String::from_utf8(out.0).unwrap(),
            format!(
                " 0 7 10 256 -1 -90 1234567890 {} {} \"0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9\" \"CUSTOM_A\\\"b\\n\"",
                i64::MAX,
                i64::MIN
            )
        );
    }

    fn pairs(query: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(query.as_bytes())
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect()
    }

    fn parse(query: &str, version: Microversion) -> Result<CandidatesQuery, QueryError> {
        parse_candidates_query(&pairs(query), version)
    }

    #[test]
    fn groups_in_query_order_with_suffixes() {
        let parsed = parse(
            "resources_B=VCPU:1&resources=DISK_GB:10&required_B=A,!C&member_of_B=in:83a3d69d-8920-48e2-8914-cadfd8fa2f91&in_tree=83a3d69d-8920-48e2-8914-cadfd8fa2f91&group_policy=isolate&limit=3",
            mv::MAX,
        )
        .unwrap();
        let suffixes: Vec<&str> = parsed.groups.iter().map(|g| g.suffix.as_str()).collect();
        assert_eq!(suffixes, vec!["_B", ""]);
        assert_eq!(parsed.groups[0].required.forbidden, vec!["C".to_owned()]);
        assert_eq!(parsed.groups[0].member_of.all_of.len(), 1);
        assert!(parsed.groups[1].in_tree.is_some());
        assert_eq!(parsed.limit, Some(3));
        assert_eq!(parsed.group_policy, Some(GroupPolicyQuery::Isolate));
    }

    #[test]
    fn numeric_suffixes_before_1_33() {
        assert_eq!(group_key("resources12", false), Some(("resources", "12")));
        assert_eq!(group_key("resources_a", false), None);
        assert_eq!(group_key("resources0", false), None);
        assert_eq!(group_key("member_of_a", true), Some(("member_of", "_a")));
        assert_eq!(group_key("limit", true), None);
    }

    #[test]
    fn group_policy_required_for_several_granular_groups() {
        let error = parse("resources1=VCPU:1&resources2=VCPU:1", mv::MAX).unwrap_err();
        assert!(error.detail.starts_with("The \"group_policy\" parameter"));
        assert!(parse("resources1=VCPU:1&resources=VCPU:1", mv::MAX).is_ok());
    }

    #[test]
    fn orphans_before_1_36() {
        let version = mv::ROOT_REQUIRED;
        assert_eq!(
            parse("resources=VCPU:1&required1=A", version)
                .unwrap_err()
                .detail,
            "All traits parameters must be associated with resources.  Found the following orphaned traits keys: required1"
        );
        assert!(
            parse(
                "resources=VCPU:1&member_of1=83a3d69d-8920-48e2-8914-cadfd8fa2f91",
                version
            )
            .unwrap_err()
            .detail
            .contains("orphaned member_of keys: member_of1")
        );
        assert_eq!(
            parse("", version).unwrap_err().detail,
            "At least one request group (`resources` or `resources{$S}`) is required."
        );
    }

    #[test]
    fn resourceless_groups_from_1_36() {
        let error = parse("required=A", mv::MAX).unwrap_err();
        assert_eq!(error.code, ErrorCode::QueryMissingValue);
        let error = parse("resources=VCPU:1&required_X=A", mv::MAX).unwrap_err();
        assert_eq!(error.code, ErrorCode::QueryBadValue);
        assert_eq!(
            error.detail,
            "Resourceless suffixed group request should be specified in `same_subtree` query param: bad group(s) - ['_X']."
        );
        assert!(
            parse(
                "resources_A=VCPU:1&required_X=A&same_subtree=_A,_X&group_policy=none",
                mv::MAX
            )
            .is_ok()
        );
        let error = parse("resources=VCPU:1&same_subtree=_Z", mv::MAX).unwrap_err();
        assert_eq!(
            error.detail,
            "Real suffixes should be specified in `same_subtree`: ['_Z'] not found in ['']."
        );
    }

    #[test]
    fn conflicting_traits() {
        let error = parse("resources=VCPU:1&required=A,!A", mv::MAX).unwrap_err();
        assert_eq!(
            error.detail,
            "Conflicting required and forbidden traits found in the following traits keys: required: (A)"
        );
        assert!(parse("resources=VCPU:1&required=in:A,B&required=!A", mv::MAX).is_ok());
    }
}
