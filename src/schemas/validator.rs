//! JSON Schema validation of request bodies whose error texts read like Python `jsonschema`'s
//! (4.23, Draft 2020-12 as `jsonschema.validate` picks for schemas without `$schema`); it answers
//! to upstream's `jsonschema.validate(..., format_checker=...)` call in `placement/util.py extract_json`.

use std::cmp::Ordering;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use regex::Regex;
use serde_json::{Map, Number, Value};

/// Validates `instance` against `schema` (a JSON Schema draft-4/7 subset given as serde_json::Value,
/// whose object key order is the order keywords and properties are checked in).
/// Returns Err(text) with the text Python's `str(jsonschema.ValidationError)` would give for the
/// error `jsonschema.validate` raises (i.e. the best_match error).
pub fn validate(schema: &serde_json::Value, instance: &serde_json::Value) -> Result<(), String> {
    match best_match(iter_errors(schema, instance)) {
        None => Ok(()),
        Some(error) => Err(error.render()),
    }
}

/// One step of an instance or schema path (Python's deque entries: `str` or `int`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Seg {
    Index(usize),
    Key(String),
}

impl Seg {
    fn repr(&self) -> String {
        match self {
            Seg::Index(i) => i.to_string(),
            Seg::Key(k) => repr_str(k),
        }
    }
}

/// Mirror of `jsonschema.ValidationError`, borrowing the schema and instance it points at.
#[derive(Debug)]
struct VError<'a> {
    message: String,
    /// `None` only for a `false` schema, which Python reports as validator `None`.
    keyword: Option<&'a str>,
    /// Relative instance path (`error.path`).
    path: VecDeque<Seg>,
    /// Relative schema path (`error.relative_schema_path`).
    schema_path: VecDeque<Seg>,
    /// The (sub)schema holding the failing keyword.
    schema: &'a Value,
    instance: &'a Value,
    /// Sub-errors of `anyOf` / `oneOf`.
    context: Vec<VError<'a>>,
}

impl<'a> VError<'a> {
    fn new(message: String, keyword: &'a str, schema: &'a Value, instance: &'a Value) -> Self {
        VError {
            message,
            keyword: Some(keyword),
            path: VecDeque::new(),
            schema_path: VecDeque::new(),
            schema,
            instance,
            context: Vec::new(),
        }
    }

    /// Python's `ValidationError.__str__`: paths are relative, repr blocks are pprint'ed and
    /// indented by 4 after the template is dedented.
    fn render(&self) -> String {
        let keyword = self.keyword.map_or_else(|| "None".to_owned(), repr_str);
        let schema_indices: Vec<&Seg> = {
            let n = self.schema_path.len().saturating_sub(1);
            self.schema_path.iter().take(n).collect()
        };
        format!(
            "{}\n\nFailed validating {} in {}:\n    {}\n\nOn {}:\n    {}",
            self.message,
            keyword,
            format_as_index("schema", schema_indices),
            pformat(self.schema).replace('\n', "\n    "),
            format_as_index("instance", self.path.iter().collect()),
            pformat(self.instance).replace('\n', "\n    "),
        )
    }

    /// `_matches_type`: whether the error's schema `type` admits the instance.
    fn matches_type(&self) -> bool {
        match self.schema.get("type") {
            Some(Value::String(t)) => is_type(self.instance, t),
            Some(Value::Array(types)) => types
                .iter()
                .any(|t| t.as_str().is_some_and(|t| is_type(self.instance, t))),
            _ => false,
        }
    }
}

fn format_as_index(container: &str, indices: Vec<&Seg>) -> String {
    if indices.is_empty() {
        return container.to_owned();
    }
    let parts: Vec<String> = indices.iter().map(|s| s.repr()).collect();
    format!("{container}[{}]", parts.join("]["))
}

// ---------------------------------------------------------------------------
// Error selection (jsonschema.exceptions.best_match / relevance)
// ---------------------------------------------------------------------------

/// Compares two errors by `relevance`: (-len(path), path, not weak, in strong, not matches_type).
/// STRONG_MATCHES is empty upstream, so that component is always equal and omitted.
fn relevance_cmp(a: &VError, b: &VError) -> Ordering {
    let weak = |e: &VError| matches!(e.keyword, Some("anyOf" | "oneOf"));
    b.path
        .len()
        .cmp(&a.path.len())
        .then_with(|| a.path.cmp(&b.path))
        .then_with(|| (!weak(a)).cmp(&!weak(b)))
        .then_with(|| (!a.matches_type()).cmp(&!b.matches_type()))
}

fn best_match(errors: Vec<VError<'_>>) -> Option<VError<'_>> {
    // `max` keeps the first of equally relevant errors.
    let mut best: Option<VError> = None;
    for error in errors {
        match &best {
            Some(b) if relevance_cmp(&error, b) != Ordering::Greater => {}
            _ => best = Some(error),
        }
    }
    let mut best = best?;
    // Descend into anyOf/oneOf context towards the *least* relevant (deepest) sub-error,
    // stopping when the two smallest tie (heapq.nsmallest(2) in upstream).
    while !best.context.is_empty() {
        let mut min_idx = 0;
        let mut tied = false;
        for i in 1..best.context.len() {
            match relevance_cmp(&best.context[i], &best.context[min_idx]) {
                Ordering::Less => {
                    min_idx = i;
                    tied = false;
                }
                Ordering::Equal => tied = true,
                Ordering::Greater => {}
            }
        }
        if tied {
            return Some(best);
        }
        best = best.context.swap_remove(min_idx);
    }
    Some(best)
}

// ---------------------------------------------------------------------------
// Keyword application (Validator.iter_errors / descend and jsonschema._keywords)
// ---------------------------------------------------------------------------

fn descend<'a>(
    schema: &'a Value,
    instance: &'a Value,
    path: Option<Seg>,
    schema_path: Option<Seg>,
) -> Vec<VError<'a>> {
    let mut errors = iter_errors(schema, instance);
    // Upstream's descend yields a `false` schema's error without the path prefixes.
    if schema == &Value::Bool(false) {
        return errors;
    }
    for error in &mut errors {
        if let Some(p) = &path {
            error.path.push_front(p.clone());
        }
        if let Some(sp) = &schema_path {
            error.schema_path.push_front(sp.clone());
        }
    }
    errors
}

fn is_valid(schema: &Value, instance: &Value) -> bool {
    iter_errors(schema, instance).is_empty()
}

fn iter_errors<'a>(schema: &'a Value, instance: &'a Value) -> Vec<VError<'a>> {
    let map = match schema {
        Value::Object(map) => map,
        Value::Bool(false) => {
            return vec![VError {
                message: format!("False schema does not allow {}", repr(instance)),
                keyword: None,
                path: VecDeque::new(),
                schema_path: VecDeque::new(),
                schema,
                instance,
                context: Vec::new(),
            }];
        }
        _ => return Vec::new(),
    };
    let mut out = Vec::new();
    for (kw, value) in map {
        for mut error in apply_keyword(kw, value, instance, map, schema) {
            error.schema_path.push_front(Seg::Key(kw.clone()));
            out.push(error);
        }
    }
    out
}

/// Runs one keyword; unknown keywords (and ones upstream never uses) are ignored like
/// jsonschema ignores keywords it has no validator for.
fn apply_keyword<'a>(
    kw: &'a str,
    value: &'a Value,
    instance: &'a Value,
    map: &'a Map<String, Value>,
    schema: &'a Value,
) -> Vec<VError<'a>> {
    let fail = |message: String| vec![VError::new(message, kw, schema, instance)];
    let inst = || repr(instance);
    match kw {
        "type" => {
            let types: Vec<&Value> = match value {
                Value::Array(a) => a.iter().collect(),
                Value::String(_) => vec![value],
                _ => return Vec::new(),
            };
            let ok = types
                .iter()
                .any(|t| t.as_str().is_some_and(|t| is_type(instance, t)));
            if ok {
                return Vec::new();
            }
            let reprs: Vec<String> = types.iter().map(|t| repr(t)).collect();
            fail(format!("{} is not of type {}", inst(), reprs.join(", ")))
        }
        "enum" => {
            let Value::Array(options) = value else {
                return Vec::new();
            };
            if options.iter().any(|o| json_equal(o, instance)) {
                return Vec::new();
            }
            fail(format!("{} is not one of {}", inst(), repr(value)))
        }
        "const" => {
            if json_equal(value, instance) {
                return Vec::new();
            }
            fail(format!("{} was expected", repr(value)))
        }
        "properties" => {
            let (Value::Object(props), Value::Object(obj)) = (value, instance) else {
                return Vec::new();
            };
            let mut out = Vec::new();
            for (name, sub) in props {
                if let Some(v) = obj.get(name) {
                    let seg = Seg::Key(name.clone());
                    out.extend(descend(sub, v, Some(seg.clone()), Some(seg)));
                }
            }
            out
        }
        "patternProperties" => {
            let (Value::Object(patterns), Value::Object(obj)) = (value, instance) else {
                return Vec::new();
            };
            let mut out = Vec::new();
            for (pattern, sub) in patterns {
                for (k, v) in obj {
                    if py_search(pattern, k) {
                        out.extend(descend(
                            sub,
                            v,
                            Some(Seg::Key(k.clone())),
                            Some(Seg::Key(pattern.clone())),
                        ));
                    }
                }
            }
            out
        }
        "additionalProperties" => additional_properties(kw, value, instance, map, schema),
        "required" => {
            let (Value::Array(names), Value::Object(obj)) = (value, instance) else {
                return Vec::new();
            };
            names
                .iter()
                .filter_map(Value::as_str)
                .filter(|name| !obj.contains_key(*name))
                .map(|name| {
                    let msg = format!("{} is a required property", repr_str(name));
                    VError::new(msg, kw, schema, instance)
                })
                .collect()
        }
        "minProperties" | "maxProperties" => {
            let Value::Object(obj) = instance else {
                return Vec::new();
            };
            size_check(kw, value, obj.len(), "properties")
                .map_or_else(Vec::new, |m| fail(format!("{} {m}", inst())))
        }
        "minItems" | "maxItems" => {
            let Value::Array(items) = instance else {
                return Vec::new();
            };
            size_check(kw, value, items.len(), "items")
                .map_or_else(Vec::new, |m| fail(format!("{} {m}", inst())))
        }
        "minLength" | "maxLength" => {
            // Python's len() counts code points.
            let Value::String(s) = instance else {
                return Vec::new();
            };
            size_check(kw, value, s.chars().count(), "length")
                .map_or_else(Vec::new, |m| fail(format!("{} {m}", inst())))
        }
        "uniqueItems" => match instance {
            Value::Array(items) if value.as_bool() == Some(true) && !all_unique(items) => {
                fail(format!("{} has non-unique elements", inst()))
            }
            _ => Vec::new(),
        },
        "items" => items(kw, value, instance, map, schema),
        "prefixItems" => {
            let (Value::Array(subs), Value::Array(items)) = (value, instance) else {
                return Vec::new();
            };
            let mut out = Vec::new();
            for (i, (sub, item)) in subs.iter().zip(items).enumerate() {
                out.extend(descend(sub, item, Some(Seg::Index(i)), Some(Seg::Index(i))));
            }
            out
        }
        "pattern" => match (value, instance) {
            (Value::String(p), Value::String(s)) if !py_search(p, s) => {
                fail(format!("{} does not match {}", inst(), repr_str(p)))
            }
            _ => Vec::new(),
        },
        "format" => match value.as_str() {
            // Upstream registers oslo's is_uuid_like as the 'uuid' checker; like it, the
            // check runs for every instance type. Other formats are not checked.
            Some("uuid") if !is_uuid_like(instance) => {
                fail(format!("{} is not a {}", inst(), repr(value)))
            }
            _ => Vec::new(),
        },
        "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" => {
            let (Value::Number(limit), Value::Number(n)) = (value, instance) else {
                return Vec::new();
            };
            let ord = num_cmp(n, limit);
            let lim = repr(value);
            let msg = match kw {
                "minimum" if ord == Ordering::Less => {
                    format!("{} is less than the minimum of {lim}", inst())
                }
                "maximum" if ord == Ordering::Greater => {
                    format!("{} is greater than the maximum of {lim}", inst())
                }
                "exclusiveMinimum" if ord != Ordering::Greater => {
                    format!("{} is less than or equal to the minimum of {lim}", inst())
                }
                "exclusiveMaximum" if ord != Ordering::Less => {
                    format!(
                        "{} is greater than or equal to the maximum of {lim}",
                        inst()
                    )
                }
                _ => return Vec::new(),
            };
            fail(msg)
        }
        "allOf" => {
            let Value::Array(subs) = value else {
                return Vec::new();
            };
            let mut out = Vec::new();
            for (i, sub) in subs.iter().enumerate() {
                out.extend(descend(sub, instance, None, Some(Seg::Index(i))));
            }
            out
        }
        "anyOf" | "oneOf" => {
            let Value::Array(subs) = value else {
                return Vec::new();
            };
            let mut all_errors = Vec::new();
            let mut first_valid = None;
            for (i, sub) in subs.iter().enumerate() {
                let errs = descend(sub, instance, None, Some(Seg::Index(i)));
                if errs.is_empty() {
                    first_valid = Some(i);
                    break;
                }
                all_errors.extend(errs);
            }
            let mut out = Vec::new();
            match first_valid {
                None => {
                    let msg = format!("{} is not valid under any of the given schemas", inst());
                    let mut error = VError::new(msg, kw, schema, instance);
                    error.context = all_errors;
                    out.push(error);
                }
                Some(first) if kw == "oneOf" => {
                    let mut more: Vec<&Value> = subs[first + 1..]
                        .iter()
                        .filter(|s| is_valid(s, instance))
                        .collect();
                    if !more.is_empty() {
                        more.push(&subs[first]);
                        let reprs: Vec<String> = more.iter().map(|s| repr(s)).collect();
                        let msg = format!("{} is valid under each of {}", inst(), reprs.join(", "));
                        out.push(VError::new(msg, kw, schema, instance));
                    }
                }
                Some(_) => {}
            }
            out
        }
        "not" => {
            if is_valid(value, instance) {
                fail(format!(
                    "{} should not be valid under {}",
                    inst(),
                    repr(value)
                ))
            } else {
                Vec::new()
            }
        }
        _ => Vec::new(),
    }
}

fn additional_properties<'a>(
    kw: &'a str,
    value: &'a Value,
    instance: &'a Value,
    map: &'a Map<String, Value>,
    schema: &'a Value,
) -> Vec<VError<'a>> {
    let Value::Object(obj) = instance else {
        return Vec::new();
    };
    // find_additional_properties: searches with all patterns joined by '|'.
    let joined = match map.get("patternProperties") {
        Some(Value::Object(p)) => p.keys().cloned().collect::<Vec<_>>().join("|"),
        _ => String::new(),
    };
    let props = map.get("properties").and_then(Value::as_object);
    let extras: Vec<&String> = obj
        .keys()
        .filter(|k| !props.is_some_and(|p| p.contains_key(*k)))
        .filter(|k| joined.is_empty() || !py_search(&joined, k))
        .collect();
    match value {
        // Upstream iterates a set here (hash order); instance order is the stable stand-in.
        Value::Object(_) => {
            let mut out = Vec::new();
            for k in extras {
                if let Some(v) = obj.get(k) {
                    out.extend(descend(value, v, Some(Seg::Key(k.clone())), None));
                }
            }
            out
        }
        Value::Bool(false) if !extras.is_empty() => {
            let mut sorted = extras;
            sorted.sort();
            let names: Vec<String> = sorted.iter().map(|k| repr_str(k)).collect();
            let msg = if let Some(pp) = map.get("patternProperties") {
                let verb = if names.len() == 1 { "does" } else { "do" };
                let mut patterns: Vec<&String> = pp
                    .as_object()
                    .map(|p| p.keys().collect())
                    .unwrap_or_default();
                patterns.sort();
                let patterns: Vec<String> = patterns.iter().map(|p| repr_str(p)).collect();
                format!(
                    "{} {verb} not match any of the regexes: {}",
                    names.join(", "),
                    patterns.join(", ")
                )
            } else {
                let verb = if names.len() == 1 { "was" } else { "were" };
                format!(
                    "Additional properties are not allowed ({} {verb} unexpected)",
                    names.join(", ")
                )
            };
            vec![VError::new(msg, kw, schema, instance)]
        }
        _ => Vec::new(),
    }
}

fn items<'a>(
    kw: &'a str,
    value: &'a Value,
    instance: &'a Value,
    map: &'a Map<String, Value>,
    schema: &'a Value,
) -> Vec<VError<'a>> {
    let Value::Array(list) = instance else {
        return Vec::new();
    };
    let prefix = map
        .get("prefixItems")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if list.len() <= prefix {
        return Vec::new();
    }
    let extra = list.len() - prefix;
    match value {
        Value::Bool(false) => {
            let rest = if extra == 1 {
                repr(&list[prefix])
            } else {
                repr(&Value::Array(list[prefix..].to_vec()))
            };
            let item = if prefix == 1 { "item" } else { "items" };
            let msg = format!("Expected at most {prefix} {item} but found {extra} extra: {rest}");
            vec![VError::new(msg, kw, schema, instance)]
        }
        Value::Bool(true) | Value::Object(_) => {
            let mut out = Vec::new();
            for (i, item) in list.iter().enumerate().skip(prefix) {
                out.extend(descend(value, item, Some(Seg::Index(i)), None));
            }
            out
        }
        // Draft-4 tuple form is not a 2020-12 schema; upstream never uses it.
        _ => Vec::new(),
    }
}

/// min*/max* size keywords; returns the message tail when the size is out of bounds.
fn size_check(kw: &str, limit: &Value, size: usize, unit: &str) -> Option<&'static str> {
    let limit = limit.as_f64()?;
    let size = size as f64;
    if kw.starts_with("min") {
        if size >= limit {
            return None;
        }
        if limit == 1.0 {
            return Some("should be non-empty");
        }
        Some(if unit == "properties" {
            "does not have enough properties"
        } else {
            "is too short"
        })
    } else {
        if size <= limit {
            return None;
        }
        if limit == 0.0 {
            return Some("is expected to be empty");
        }
        Some(if unit == "properties" {
            "has too many properties"
        } else {
            "is too long"
        })
    }
}

// ---------------------------------------------------------------------------
// Types, equality, numbers, formats, regexes
// ---------------------------------------------------------------------------

/// Draft 2020-12 type checker: booleans are not numbers; integral floats are integers.
fn is_type(v: &Value, t: &str) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "number" => v.is_number(),
        "integer" => match v {
            Value::Number(n) => match py_num(n) {
                PyNum::Int(_) => true,
                PyNum::Float(f) => f.is_finite() && f.fract() == 0.0,
            },
            _ => false,
        },
        _ => false,
    }
}

/// A JSON number as Python's json module would hold it (int or float).
#[derive(Clone, Copy)]
enum PyNum {
    Int(i128),
    Float(f64),
}

fn py_num(n: &Number) -> PyNum {
    if let Some(i) = n.as_i64() {
        PyNum::Int(i128::from(i))
    } else if let Some(u) = n.as_u64() {
        PyNum::Int(i128::from(u))
    } else {
        PyNum::Float(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// Exact int/float comparison like Python's (no rounding of large ints to f64).
fn num_cmp(a: &Number, b: &Number) -> Ordering {
    fn int_float(i: i128, f: f64) -> Ordering {
        if f.is_nan() {
            return Ordering::Equal;
        }
        if f >= 1.0e38 {
            return Ordering::Less;
        }
        if f <= -1.0e38 {
            return Ordering::Greater;
        }
        let floor = f.floor();
        match i.cmp(&(floor as i128)) {
            Ordering::Equal if f > floor => Ordering::Less,
            other => other,
        }
    }
    match (py_num(a), py_num(b)) {
        (PyNum::Int(x), PyNum::Int(y)) => x.cmp(&y),
        (PyNum::Float(x), PyNum::Float(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        (PyNum::Int(x), PyNum::Float(y)) => int_float(x, y),
        (PyNum::Float(x), PyNum::Int(y)) => int_float(y, x).reverse(),
    }
}

/// `jsonschema._utils.equal`: like `==` but `True`/`False` never equal `1`/`0`.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => num_cmp(x, y) == Ordering::Equal,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

fn all_unique(items: &[Value]) -> bool {
    items
        .iter()
        .enumerate()
        .all(|(i, a)| items[i + 1..].iter().all(|b| !json_equal(a, b)))
}

/// oslo_utils.uuidutils.is_uuid_like, which upstream registers as the 'uuid' format checker:
/// after dropping 'urn:'/'uuid:', outer braces and all hyphens, 32 hex digits must remain.
fn is_uuid_like(v: &Value) -> bool {
    let Value::String(s) = v else {
        return false;
    };
    let s = s.replace("urn:", "").replace("uuid:", "");
    let s = s.trim_matches(|c| c == '{' || c == '}').replace('-', "");
    s.len() == 32 && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// Python `re.search(pattern, text)`. Patterns are cached since schemas are static; a
/// pattern the regex crate cannot compile never matches. The cache hands out shared
/// handles: a cloned `Regex` gets a fresh, empty matching cache, which costs far more to
/// set up than the match itself.
fn py_search(pattern: &str, text: &str) -> bool {
    static CACHE: OnceLock<Mutex<HashMap<String, Option<Arc<Regex>>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let regex = {
        let mut guard = cache.lock().unwrap_or_else(PoisonError::into_inner);
        if guard.len() > 1024 {
            guard.clear();
        }
        guard
            .entry(pattern.to_owned())
            .or_insert_with(|| Regex::new(&translate_regex(pattern)).ok().map(Arc::new))
            .clone()
    };
    regex.is_some_and(|r| r.is_match(text))
}

/// Rewrites Python `re` syntax where the regex crate differs: `$` also matches before a final
/// newline, `\Z` is `\z`, and `[`, `&`, `~` are literal inside classes.
fn translate_regex(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('Z') if !in_class => out.push_str(r"\z"),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            },
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    chars.next();
                    out.push('^');
                }
                if chars.peek() == Some(&']') {
                    chars.next();
                    out.push_str(r"\]");
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '[' | '&' | '~' if in_class => {
                out.push('\\');
                out.push(c);
            }
            '$' if !in_class => out.push_str(r"(?:\n?\z)"),
            _ => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Python repr / pprint
// ---------------------------------------------------------------------------

/// Python `repr` of the object `json.loads` would produce for `v`.
fn repr(v: &Value) -> String {
    match v {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Number(n) => match py_num(n) {
            PyNum::Int(i) => i.to_string(),
            PyNum::Float(f) => repr_float(f),
        },
        Value::String(s) => repr_str(s),
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(repr).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", repr_str(k), repr(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
    }
}

/// Python `repr(float)`: shortest round-trip digits, exponent form when the decimal point
/// position is below -4 or above 16.
fn repr_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if f == 0.0 {
        return format!("{sign}0.0");
    }
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let decpt = exp + 1;
    let body = if !(-4 < decpt && decpt <= 16) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{first}{frac}e{esign}{:02}", exp.unsigned_abs())
    } else if decpt <= 0 {
        format!("0.{}{digits}", "0".repeat(decpt.unsigned_abs() as usize))
    } else {
        let point = decpt as usize;
        if point >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point - digits.len()))
        } else {
            format!("{}.{}", &digits[..point], &digits[point..])
        }
    };
    format!("{sign}{body}")
}

/// Python `repr(str)`: single quotes unless only `'` occurs, escapes for non-printables.
fn repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c < ' ' || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_ascii() || is_printable(c) => out.push(c),
            c => {
                let cp = c as u32;
                if cp <= 0xff {
                    out.push_str(&format!("\\x{cp:02x}"));
                } else if cp <= 0xffff {
                    out.push_str(&format!("\\u{cp:04x}"));
                } else {
                    out.push_str(&format!("\\U{cp:08x}"));
                }
            }
        }
    }
    out.push(quote);
    out
}

/// Approximates Python's `str.isprintable` for non-ASCII: control, format, separator (other
/// than space), private-use and well-known unassigned ranges are non-printable.
fn is_printable(c: char) -> bool {
    const NON_PRINTABLE: &[(u32, u32)] = &[
        (0x80, 0xa0),
        (0xad, 0xad),
        (0x600, 0x605),
        (0x61c, 0x61c),
        (0x6dd, 0x6dd),
        (0x70f, 0x70f),
        (0x890, 0x891),
        (0x8e2, 0x8e2),
        (0x1680, 0x1680),
        (0x180e, 0x180e),
        (0x2000, 0x200f),
        (0x2028, 0x202f),
        (0x205f, 0x206f),
        (0x3000, 0x3000),
        (0xe000, 0xf8ff),
        (0xfdd0, 0xfdef),
        (0xfeff, 0xfeff),
        (0xfff0, 0xfffb),
        (0xfffe, 0xffff),
        (0x110bd, 0x110bd),
        (0x110cd, 0x110cd),
        (0x13430, 0x1343f),
        (0x1bca0, 0x1bca3),
        (0x1d173, 0x1d17a),
        (0x323b0, 0xe00ff),
        (0xe01f0, 0x10ffff),
    ];
    let cp = c as u32;
    let plane_nonchar = cp & 0xfffe == 0xfffe;
    !plane_nonchar && !NON_PRINTABLE.iter().any(|&(lo, hi)| lo <= cp && cp <= hi)
}

const PP_WIDTH: isize = 72;

/// `pprint.pformat(v, width=72, sort_dicts=False)`.
fn pformat(v: &Value) -> String {
    let mut out = String::new();
    pp_format(v, &mut out, 0, 0, 0);
    out
}

fn char_len(s: &str) -> isize {
    s.chars().count() as isize
}

fn pp_format(v: &Value, out: &mut String, indent: isize, allowance: isize, level: usize) {
    let rep = repr(v);
    if char_len(&rep) > PP_WIDTH - indent - allowance {
        match v {
            Value::Object(m) => {
                out.push('{');
                if !m.is_empty() {
                    let inner = indent + 1;
                    let delim = format!(",\n{}", " ".repeat(inner as usize));
                    let last = m.len() - 1;
                    for (i, (k, item)) in m.iter().enumerate() {
                        let key = repr_str(k);
                        out.push_str(&key);
                        out.push_str(": ");
                        let allow = if i == last { allowance + 1 } else { 1 };
                        pp_format(item, out, inner + char_len(&key) + 2, allow, level + 1);
                        if i != last {
                            out.push_str(&delim);
                        }
                    }
                }
                out.push('}');
                return;
            }
            Value::Array(a) => {
                out.push('[');
                let inner = indent + 1;
                let delim = format!(",\n{}", " ".repeat(inner as usize));
                for (i, item) in a.iter().enumerate() {
                    if i > 0 {
                        out.push_str(&delim);
                    }
                    let allow = if i + 1 == a.len() { allowance + 1 } else { 1 };
                    pp_format(item, out, inner, allow, level + 1);
                }
                out.push(']');
                return;
            }
            Value::String(s) if !s.is_empty() => {
                pp_str(s, out, indent, allowance, level + 1);
                return;
            }
            _ => {}
        }
    }
    out.push_str(&rep);
}

/// pprint's `_pprint_str`: splits per line, then at whitespace, into adjacent literals
/// (parenthesised at top level).
fn pp_str(s: &str, out: &mut String, mut indent: isize, mut allowance: isize, level: usize) {
    if level == 1 {
        indent += 1;
        allowance += 1;
    }
    let lines = split_lines_keepends(s);
    let max_width = PP_WIDTH - indent;
    let mut max_width1 = max_width;
    let mut chunks: Vec<String> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let last_line = i + 1 == lines.len();
        let rep = repr_str(line);
        if last_line {
            max_width1 -= allowance;
        }
        if char_len(&rep) <= max_width1 {
            chunks.push(rep);
            continue;
        }
        let parts = split_words(line);
        let mut max_width2 = max_width;
        let mut current = String::new();
        for (j, part) in parts.iter().enumerate() {
            let candidate = format!("{current}{part}");
            if j + 1 == parts.len() && last_line {
                max_width2 -= allowance;
            }
            if char_len(&repr_str(&candidate)) > max_width2 {
                if !current.is_empty() {
                    chunks.push(repr_str(&current));
                }
                current = (*part).to_owned();
            } else {
                current = candidate;
            }
        }
        if !current.is_empty() {
            chunks.push(repr_str(&current));
        }
    }
    if chunks.len() == 1 {
        out.push_str(&repr_str(s));
        return;
    }
    if level == 1 {
        out.push('(');
    }
    let sep = format!("\n{}", " ".repeat(indent.max(0) as usize));
    out.push_str(&chunks.join(&sep));
    if level == 1 {
        out.push(')');
    }
}

/// `str.splitlines(keepends=True)`.
fn split_lines_keepends(s: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut iter = s.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        let end = match c {
            '\r' => match iter.peek() {
                Some(&(j, '\n')) => {
                    iter.next();
                    j + 1
                }
                _ => i + 1,
            },
            '\n' | '\x0b' | '\x0c' | '\x1c' | '\x1d' | '\x1e' | '\u{85}' | '\u{2028}'
            | '\u{2029}' => i + c.len_utf8(),
            _ => continue,
        };
        lines.push(&s[start..end]);
        start = end;
    }
    if start < s.len() {
        lines.push(&s[start..]);
    }
    lines
}

fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// `re.findall(r'\S*\s*', line)` minus the trailing empty match.
fn split_words(line: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut seen_space = false;
    for (i, c) in line.char_indices() {
        if py_isspace(c) {
            seen_space = true;
        } else if seen_space {
            parts.push(&line[start..i]);
            start = i;
            seen_space = false;
        }
    }
    if start < line.len() {
        parts.push(&line[start..]);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const UUID: &str = "30a6de4c-bb63-4a62-89b9-4fc2e3c08d7d";

    fn err(schema: &Value, instance: &Value) -> String {
        match validate(schema, instance) {
            Ok(()) => panic!("expected a validation error for {instance}"),
            Err(e) => e,
        }
    }

    fn first_line(schema: &Value, instance: &Value) -> String {
        err(schema, instance)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    // Upstream placement/schemas, transcribed in their key order.
    fn post_resource_provider() -> Value {
        json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "maxLength": 200},
                "uuid": {"type": "string", "format": "uuid"},
                "parent_provider_uuid": {
                    "anyOf": [{"type": "string", "format": "uuid"}, {"type": "null"}]
                }
            },
            "required": ["name"],
            "additionalProperties": false
        })
    }

    fn inventory_record() -> Value {
        let int = |min: i64| json!({"type": "integer", "maximum": 2147483647, "minimum": min});
        json!({
            "type": "object",
            "properties": {
                "resource_provider_generation": {"type": "integer"},
                "total": int(1),
                "reserved": int(0),
                "min_unit": int(1),
                "max_unit": int(1),
                "step_size": int(1),
                "allocation_ratio": {"type": "number", "maximum": 3.40282e+38}
            },
            "required": ["total"],
            "additionalProperties": false
        })
    }

    fn put_inventories() -> Value {
        json!({
            "type": "object",
            "properties": {
                "resource_provider_generation": {"type": "integer"},
                "inventories": {
                    "type": "object",
                    "patternProperties": {"^[A-Z0-9_]+$": inventory_record()}
                }
            },
            "required": ["resource_provider_generation", "inventories"],
            "additionalProperties": false
        })
    }

    fn allocations_v1_38() -> Value {
        let text = json!({"type": "string", "minLength": 1, "maxLength": 255});
        json!({
            "type": "object",
            "properties": {
                "allocations": {
                    "type": "object",
                    "minProperties": 0,
                    "patternProperties": {
                        "^[0-9a-fA-F-]{36}$": {
                            "type": "object",
                            "properties": {
                                "generation": {"type": "integer"},
                                "resources": {
                                    "type": "object",
                                    "minProperties": 1,
                                    "patternProperties": {
                                        "^[A-Z0-9_]+$": {"type": "integer", "minimum": 1}
                                    },
                                    "additionalProperties": false
                                }
                            },
                            "required": ["resources"],
                            "additionalProperties": false
                        }
                    },
                    "additionalProperties": false
                },
                "project_id": text,
                "user_id": text,
                "consumer_generation": {"type": ["integer", "null"], "additionalProperties": false},
                "mappings": {
                    "type": "object",
                    "minProperties": 1,
                    "patternProperties": {
                        "[a-zA-Z0-9_-]{1,64}": {
                            "type": "array",
                            "minItems": 1,
                            "items": {"type": "string", "format": "uuid"}
                        }
                    }
                },
                "consumer_type": {
                    "type": "string",
                    "pattern": "^[A-Z0-9_]+$",
                    "minLength": 1,
                    "maxLength": 255
                }
            },
            "additionalProperties": false,
            "required": ["allocations", "project_id", "user_id", "consumer_generation", "consumer_type"]
        })
    }

    fn allocation_body() -> Value {
        json!({
            "allocations": {UUID: {"resources": {"VCPU": 1}}},
            "project_id": "p",
            "user_id": "u",
            "consumer_generation": null,
            "consumer_type": "INSTANCE"
        })
    }

    #[test]
    fn valid_bodies_pass() {
        assert_eq!(validate(&allocations_v1_38(), &allocation_body()), Ok(()));
        let rp = json!({"name": "cn1", "uuid": UUID, "parent_provider_uuid": null});
        assert_eq!(validate(&post_resource_provider(), &rp), Ok(()));
        let inv = json!({"resource_provider_generation": 0,
                         "inventories": {"VCPU": {"total": 8, "allocation_ratio": 16.0}}});
        assert_eq!(validate(&put_inventories(), &inv), Ok(()));
    }

    #[test]
    fn too_long_name_full_text() {
        let name = "x".repeat(201);
        let expected = format!(
            "'{name}' is too long\n\nFailed validating 'maxLength' in schema['properties']['name']:\
             \n    {{'type': 'string', 'maxLength': 200}}\n\nOn instance['name']:\n    '{name}'"
        );
        assert_eq!(
            err(&post_resource_provider(), &json!({"name": name})),
            expected
        );
    }

    #[test]
    fn inventory_total_bounds() {
        let e = err(&inventory_record(), &json!({"total": 0}));
        assert_eq!(
            e,
            "0 is less than the minimum of 1\n\nFailed validating 'minimum' in \
             schema['properties']['total']:\n    {'type': 'integer', 'maximum': 2147483647, \
             'minimum': 1}\n\nOn instance['total']:\n    0"
        );
        let body = json!({"resource_provider_generation": 1,
                          "inventories": {"VCPU": {"total": 2147483648_i64}}});
        let e = err(&put_inventories(), &body);
        assert!(e.starts_with("2147483648 is greater than the maximum of 2147483647\n"));
        assert!(e.contains(
            "Failed validating 'maximum' in schema['properties']['inventories']\
             ['patternProperties']['^[A-Z0-9_]+$']['properties']['total']:"
        ));
        assert!(e.contains("On instance['inventories']['VCPU']['total']:\n    2147483648"));
        let e = first_line(&inventory_record(), &json!({"reserved": 1}));
        assert_eq!(e, "'total' is a required property");
    }

    #[test]
    fn allocation_errors() {
        let schema = allocations_v1_38();
        let mut body = allocation_body();
        if let Some(obj) = body.as_object_mut() {
            obj.remove("consumer_type");
        }
        let e = err(&schema, &body);
        assert!(e.starts_with(
            "'consumer_type' is a required property\n\nFailed validating 'required' in schema:\n"
        ));
        assert!(e.contains("\n\nOn instance:\n    {'allocations': "));

        body["consumer_type"] = json!("instance");
        let e = err(&schema, &body);
        assert!(e.starts_with("'instance' does not match '^[A-Z0-9_]+$'\n"));
        assert!(e.contains("Failed validating 'pattern' in schema['properties']['consumer_type']"));

        body["consumer_type"] = json!("INSTANCE");
        body["bad_field"] = json!(1);
        assert_eq!(
            first_line(&schema, &body),
            "Additional properties are not allowed ('bad_field' was unexpected)"
        );
        body["another"] = json!(2);
        assert_eq!(
            first_line(&schema, &body),
            "Additional properties are not allowed ('another', 'bad_field' were unexpected)"
        );

        let mut body = allocation_body();
        body["allocations"][UUID]["resources"] = json!({});
        assert_eq!(first_line(&schema, &body), "{} should be non-empty");
        body["allocations"][UUID]["resources"] = json!({"VCPU": 0});
        let e = err(&schema, &body);
        assert!(e.starts_with("0 is less than the minimum of 1\n"));
        assert!(e.contains("On instance['allocations']['30a6de4c-bb63-4a62-89b9-4fc2e3c08d7d']['resources']['VCPU']:"));
        body["allocations"] = json!({"not-a-uuid": {}});
        assert_eq!(
            first_line(&schema, &body),
            "'not-a-uuid' does not match any of the regexes: '^[0-9a-fA-F-]{36}$'"
        );

        let mut body = allocation_body();
        body["mappings"] = json!({});
        assert_eq!(first_line(&schema, &body), "{} should be non-empty");
        body["mappings"] = json!({"beta": "x"});
        assert_eq!(first_line(&schema, &body), "'x' is not of type 'array'");
        body["mappings"] = json!({"beta": [UUID, "bad"]});
        assert_eq!(first_line(&schema, &body), "'bad' is not a 'uuid'");
        body["consumer_generation"] = json!("abc");
        assert_eq!(
            first_line(&schema, &body),
            "'abc' is not of type 'integer', 'null'"
        );
    }

    #[test]
    fn any_of_descends_into_matching_branch() {
        let schema = post_resource_provider();
        let e = err(
            &schema,
            &json!({"name": "x", "parent_provider_uuid": "bad"}),
        );
        assert_eq!(
            e,
            "'bad' is not a 'uuid'\n\nFailed validating 'format' in schema[0]:\n    \
             {'type': 'string', 'format': 'uuid'}\n\nOn instance:\n    'bad'"
        );
        // Both branches fail on type, so the anyOf error itself is reported.
        let e = first_line(&schema, &json!({"name": "x", "parent_provider_uuid": 5}));
        assert_eq!(e, "5 is not valid under any of the given schemas");
    }

    #[test]
    fn uuid_format_follows_oslo_is_uuid_like() {
        let schema = json!({"format": "uuid"});
        for ok in [
            UUID.to_owned(),
            UUID.to_uppercase(),
            UUID.replace('-', ""),
            format!("{{{UUID}}}"),
            format!("urn:uuid:{UUID}"),
        ] {
            assert_eq!(validate(&schema, &json!(ok)), Ok(()), "{ok}");
        }
        for bad in ["not a uuid", "30a6de4c-bb63-4a62-89b9-4fc2e3c08d7_", ""] {
            assert!(validate(&schema, &json!(bad)).is_err(), "{bad}");
        }
        assert_eq!(first_line(&schema, &json!(5)), "5 is not a 'uuid'");
        let typed = json!({"type": "string", "format": "uuid"});
        assert_eq!(first_line(&typed, &json!(5)), "5 is not of type 'string'");
    }

    #[test]
    fn keyword_messages() {
        let cases = [
            (json!({"minLength": 1}), json!(""), "'' should be non-empty"),
            (json!({"minLength": 3}), json!("ab"), "'ab' is too short"),
            (json!({"maxLength": 2}), json!("héé"), "'héé' is too long"),
            (
                json!({"maxLength": 0}),
                json!("a"),
                "'a' is expected to be empty",
            ),
            (
                json!({"minProperties": 2}),
                json!({"a": 1}),
                "{'a': 1} does not have enough properties",
            ),
            (
                json!({"maxProperties": 1}),
                json!({"a": 1, "b": 2}),
                "{'a': 1, 'b': 2} has too many properties",
            ),
            (json!({"minItems": 1}), json!([]), "[] should be non-empty"),
            (json!({"maxItems": 1}), json!([1, 2]), "[1, 2] is too long"),
            (
                json!({"uniqueItems": true}),
                json!([1, 1.0]),
                "[1, 1.0] has non-unique elements",
            ),
            (
                json!({"enum": ["none", "isolate"]}),
                json!("bogus"),
                "'bogus' is not one of ['none', 'isolate']",
            ),
            (
                json!({"type": "integer"}),
                json!(true),
                "True is not of type 'integer'",
            ),
            (
                json!({"type": "number"}),
                json!(null),
                "None is not of type 'number'",
            ),
            (
                json!({"type": "integer"}),
                json!(1.5),
                "1.5 is not of type 'integer'",
            ),
            (
                json!({"exclusiveMinimum": 1}),
                json!(1),
                "1 is less than or equal to the minimum of 1",
            ),
            (
                json!({"maximum": -0.5}),
                json!(0),
                "0 is greater than the maximum of -0.5",
            ),
            (
                json!({"not": {"type": "string"}}),
                json!("x"),
                "'x' should not be valid under {'type': 'string'}",
            ),
            (json!({"const": 1}), json!(true), "1 was expected"),
            (
                json!({"items": false}),
                json!([1, 2]),
                "Expected at most 0 items but found 2 extra: [1, 2]",
            ),
            (json!(false), json!(1), "False schema does not allow 1"),
            (
                json!({"oneOf": [{"type": "integer"}, {"minimum": 0}]}),
                json!(3),
                "3 is valid under each of {'minimum': 0}, {'type': 'integer'}",
            ),
            (
                json!({"additionalProperties": false, "patternProperties": {"^b": {}, "^a": {}}}),
                json!({"z": 1, "y": 2}),
                "'y', 'z' do not match any of the regexes: '^a', '^b'",
            ),
        ];
        for (schema, instance, expected) in cases {
            assert_eq!(first_line(&schema, &instance), expected);
        }
        assert_eq!(validate(&json!({"type": "integer"}), &json!(1.0)), Ok(()));
        assert_eq!(
            validate(&json!({"uniqueItems": true}), &json!([1, true])),
            Ok(())
        );
    }

    #[test]
    fn best_match_prefers_shallow_then_later_sibling() {
        let schema = json!({"properties": {"a": {"minLength": 2}, "b": {"type": "integer"}},
                            "required": ["c"]});
        assert_eq!(
            first_line(&schema, &json!({"a": "", "b": "x"})),
            "'c' is a required property"
        );
        let schema = json!({"properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}});
        // Equal depth: the greater path wins (upstream's relevance key includes the path).
        assert_eq!(
            first_line(&schema, &json!({"b": "y", "a": "x"})),
            "'y' is not of type 'integer'"
        );
    }

    #[test]
    fn pattern_uses_python_search_semantics() {
        let schema = json!({"pattern": "^[A-Z0-9_]+$"});
        assert_eq!(validate(&schema, &json!("ABC\n")), Ok(()));
        assert!(validate(&schema, &json!("ABC\nD")).is_err());
        assert_eq!(validate(&json!({"pattern": "b"}), &json!("abc")), Ok(()));
        assert_eq!(
            validate(&json!({"pattern": "[a-z]+\\Z"}), &json!("abc")),
            Ok(())
        );
    }

    #[test]
    fn python_reprs() {
        assert_eq!(repr_str("it's"), "\"it's\"");
        assert_eq!(repr_str("both ' and \""), "'both \\' and \"'");
        assert_eq!(repr_str("tab\tnl\n\u{7}"), "'tab\\tnl\\n\\x07'");
        assert_eq!(repr_str("é中😀\u{200b}\u{ad}"), "'é中😀\\u200b\\xad'");
        for (f, expected) in [
            (1.0, "1.0"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (-0.0, "-0.0"),
            (0.1 + 0.2, "0.30000000000000004"),
            (3.40282e38, "3.40282e+38"),
            (5e-324, "5e-324"),
        ] {
            assert_eq!(repr_float(f), expected);
        }
        assert_eq!(
            repr(&json!({"a": [1, null, true]})),
            "{'a': [1, None, True]}"
        );
    }

    #[test]
    fn pprint_wraps_like_python() {
        let instance = json!({"key": "x".repeat(30), "list": (0..25).collect::<Vec<_>>()});
        let e = err(&json!({"type": "string"}), &instance);
        let expected_instance = "On instance:\n    {'key': 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',\n     'list': [0,\n              \
                                 1,";
        assert!(e.contains(expected_instance), "{e}");
        let long = "word ".repeat(20);
        let e = err(&json!({"type": "integer"}), &json!(long));
        assert!(
            e.ends_with(
                "On instance:\n    ('word word word word word word word word word word word word word '\n     \
                 'word word word word word word word ')"
            ),
            "{e}"
        );
    }
}
