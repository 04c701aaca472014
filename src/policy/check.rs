//! The oslo.policy check language: parses check strings into trees and
//! evaluates them against request credentials and a target.
//! Answers to `oslo_policy/_parser.py` and `oslo_policy/_checks.py`.

use std::collections::HashMap;
use std::fmt;

use super::{Credentials, ServiceCredentials, Target};

/// The rule `rule:NAME` falls back to when NAME is undefined
/// (oslo's `policy_default_rule` option, which defaults to "default").
pub(crate) const DEFAULT_RULE: &str = "default";

// Rule references never nest this deep once cycles are refused at load time;
// the limit only guards the stack should that invariant ever break.
const MAX_RULE_DEPTH: usize = 64;

/// A parsed check tree (oslo's `BaseCheck` subclasses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Check {
    /// `@`, or an empty check string.
    Accept,
    /// `!`.
    Reject,
    /// `rule:NAME`.
    Rule(String),
    /// `role:NAME`, matched case-insensitively.
    Role(String),
    /// Any other `kind:match` (oslo's `GenericCheck`).
    Generic { kind: String, pattern: String },
    /// `not CHECK`.
    Not(Box<Check>),
    /// `A and B ...`.
    And(Vec<Check>),
    /// `A or B ...`.
    Or(Vec<Check>),
}

impl Check {
    /// Names of the rules this tree refers to with `rule:`.
    pub(crate) fn references(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_references(&mut out);
        out
    }

    fn collect_references<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Check::Rule(name) => out.push(name),
            Check::Not(inner) => inner.collect_references(out),
            Check::And(items) | Check::Or(items) => {
                items.iter().for_each(|item| item.collect_references(out));
            }
            Check::Accept | Check::Reject | Check::Role(_) | Check::Generic { .. } => {}
        }
    }
}

/// Same rendering as oslo's `__str__`, which its deprecated-rule handling
/// compares against (`str(check) != 'rule:NAME'`).
impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Check::Accept => f.write_str("@"),
            Check::Reject => f.write_str("!"),
            Check::Rule(name) => write!(f, "rule:{name}"),
            Check::Role(name) => write!(f, "role:{name}"),
            Check::Generic { kind, pattern } => write!(f, "{kind}:{pattern}"),
            Check::Not(inner) => write!(f, "not {inner}"),
            Check::And(items) => write_joined(f, items, " and "),
            Check::Or(items) => write_joined(f, items, " or "),
        }
    }
}

fn write_joined(f: &mut fmt::Formatter<'_>, items: &[Check], op: &str) -> fmt::Result {
    f.write_str("(")?;
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            f.write_str(op)?;
        }
        write!(f, "{item}")?;
    }
    f.write_str(")")
}

/// Why a check string was refused. oslo.policy logs these and makes the
/// whole rule deny; this module refuses them at load time instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// A token with no `kind:` prefix, e.g. `admin`.
    NotACheck(String),
    /// An `http:`/`https:` check, which calls out to a remote server.
    External(String),
    /// The tokens do not reduce to one expression: unbalanced parentheses,
    /// a dangling operator, two checks in a row, or a quoted string.
    Grammar,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::NotACheck(token) => write!(f, "`{token}` is not a kind:match check"),
            ParseError::External(token) => {
                write!(f, "external check `{token}` is not supported")
            }
            ParseError::Grammar => f.write_str("the expression does not reduce to one check"),
        }
    }
}

/// Parser tokens; the `*Expr` ones are partially reduced `and`/`or` chains.
#[derive(Debug)]
enum Token {
    Term(Check),
    AndExpr(Vec<Check>),
    OrExpr(Vec<Check>),
    And,
    Or,
    Not,
    Open,
    Close,
    Quoted,
}

/// Parses a check string the way oslo's `_parse_text_rule` does: a greedy
/// shift-reduce over whitespace-separated tokens, which yields the usual
/// precedence `not` > `and` > `or`.
pub(crate) fn parse(rule: &str) -> Result<Check, ParseError> {
    if rule.is_empty() {
        return Ok(Check::Accept);
    }
    let mut stack = Vec::new();
    for token in tokenize(rule)? {
        stack.push(token);
        while reduce(&mut stack) {}
    }
    // A blank (whitespace-only) rule also lands here with an empty stack;
    // oslo fails it closed rather than treating it as empty.
    match (stack.pop(), stack.is_empty()) {
        (Some(Token::Term(check)), true) => Ok(check),
        (Some(Token::AndExpr(items)), true) => Ok(Check::And(items)),
        (Some(Token::OrExpr(items)), true) => Ok(Check::Or(items)),
        _ => Err(ParseError::Grammar),
    }
}

fn tokenize(rule: &str) -> Result<Vec<Token>, ParseError> {
    let mut tokens = Vec::new();
    for raw in rule.split_whitespace() {
        // Parentheses only count at a token's edges, so `%(project_id)s`
        // inside a check survives.
        let body = raw.trim_start_matches('(');
        tokens.extend((0..raw.len() - body.len()).map(|_| Token::Open));
        if body.is_empty() {
            continue;
        }
        let clean = body.trim_end_matches(')');
        let closing = body.len() - clean.len();
        match clean.to_lowercase().as_str() {
            "and" => tokens.push(Token::And),
            "or" => tokens.push(Token::Or),
            "not" => tokens.push(Token::Not),
            _ if clean.is_empty() => {}
            // oslo tests the quotes before stripping `)`, and a quoted
            // string can never reduce, so the whole rule fails.
            _ if is_quoted(body) => tokens.push(Token::Quoted),
            _ => tokens.push(Token::Term(parse_atom(clean)?)),
        }
        tokens.extend((0..closing).map(|_| Token::Close));
    }
    Ok(tokens)
}

fn is_quoted(token: &str) -> bool {
    let mut chars = token.chars();
    match (chars.next(), chars.next_back()) {
        (Some(first), Some(last)) => first == last && (first == '"' || first == '\''),
        _ => false,
    }
}

fn parse_atom(token: &str) -> Result<Check, ParseError> {
    match token {
        "!" => return Ok(Check::Reject),
        "@" => return Ok(Check::Accept),
        _ => {}
    }
    let Some((kind, pattern)) = token.split_once(':') else {
        return Err(ParseError::NotACheck(token.to_owned()));
    };
    Ok(match kind {
        "rule" => Check::Rule(pattern.to_owned()),
        "role" => Check::Role(pattern.to_owned()),
        "http" | "https" => return Err(ParseError::External(token.to_owned())),
        _ => Check::Generic {
            kind: kind.to_owned(),
            pattern: pattern.to_owned(),
        },
    })
}

/// Applies one reduction to the top of the stack; false when none applies.
fn reduce(stack: &mut Vec<Token>) -> bool {
    if stack.len() >= 3 {
        let mut top = stack.split_off(stack.len() - 3).into_iter();
        if let (Some(a), Some(b), Some(c)) = (top.next(), top.next(), top.next()) {
            match reduce_three(a, b, c) {
                Ok(token) => {
                    stack.push(token);
                    return true;
                }
                Err(triple) => {
                    let (a, b, c) = *triple;
                    stack.extend([a, b, c]);
                }
            }
        }
    }
    if stack.len() >= 2 {
        let mut top = stack.split_off(stack.len() - 2).into_iter();
        if let (Some(a), Some(b)) = (top.next(), top.next()) {
            match (a, b) {
                (Token::Not, Token::Term(check)) => {
                    stack.push(Token::Term(Check::Not(Box::new(check))));
                    return true;
                }
                (a, b) => stack.extend([a, b]),
            }
        }
    }
    false
}

// Boxed: a refused triple is handed back to the stack (parsing happens
// once per rule at load time, so the allocation is immaterial).
type Triple = Box<(Token, Token, Token)>;

fn reduce_three(a: Token, b: Token, c: Token) -> Result<Token, Triple> {
    Ok(match (a, b, c) {
        (Token::Open, Token::Term(check), Token::Close) => Token::Term(check),
        (Token::Open, Token::AndExpr(items), Token::Close) => Token::Term(Check::And(items)),
        (Token::Open, Token::OrExpr(items), Token::Close) => Token::Term(Check::Or(items)),
        (Token::Term(left), Token::And, Token::Term(right)) => Token::AndExpr(vec![left, right]),
        (Token::AndExpr(mut items), Token::And, Token::Term(right)) => {
            items.push(right);
            Token::AndExpr(items)
        }
        // `a or b and c`: the `or` was reduced eagerly, so `and` takes its
        // last operand back (oslo's `pop_check`).
        (Token::OrExpr(mut items), Token::And, Token::Term(right)) => {
            let joined = match items.pop() {
                Some(Check::And(mut inner)) => {
                    inner.push(right);
                    Check::And(inner)
                }
                Some(last) => Check::And(vec![last, right]),
                None => right,
            };
            items.push(joined);
            Token::OrExpr(items)
        }
        (Token::Term(left), Token::Or, Token::Term(right)) => Token::OrExpr(vec![left, right]),
        (Token::AndExpr(left), Token::Or, Token::Term(right)) => {
            Token::OrExpr(vec![Check::And(left), right])
        }
        (Token::OrExpr(mut items), Token::Or, Token::Term(right)) => {
            items.push(right);
            Token::OrExpr(items)
        }
        other => return Err(Box::new(other)),
    })
}

/// Finds the check for `name`, falling back to the `default` rule like
/// oslo's `Rules.__missing__`.
pub(crate) fn resolve<'a>(rules: &'a HashMap<String, Check>, name: &str) -> Option<&'a Check> {
    rules.get(name).or_else(|| rules.get(DEFAULT_RULE))
}

/// What a check tree is evaluated against.
pub(crate) struct Context<'a> {
    pub rules: &'a HashMap<String, Check>,
    pub credentials: &'a Credentials,
    pub target: &'a Target,
}

/// Evaluates `check`; every failure mode oslo maps to "deny" is false here.
pub(crate) fn evaluate(check: &Check, ctx: &Context<'_>) -> bool {
    evaluate_at(check, ctx, 0)
}

fn evaluate_at(check: &Check, ctx: &Context<'_>, depth: usize) -> bool {
    match check {
        Check::Accept => true,
        Check::Reject => false,
        Check::Rule(name) => {
            depth < MAX_RULE_DEPTH
                && resolve(ctx.rules, name).is_some_and(|rule| evaluate_at(rule, ctx, depth + 1))
        }
        Check::Role(pattern) => interpolate(pattern, ctx.target).is_some_and(|wanted| {
            let wanted = wanted.to_lowercase();
            ctx.credentials
                .roles
                .iter()
                .any(|role| role.to_lowercase() == wanted)
        }),
        Check::Generic { kind, pattern } => interpolate(pattern, ctx.target)
            .is_some_and(|wanted| generic_matches(kind, &wanted, ctx.credentials)),
        Check::Not(inner) => !evaluate_at(inner, ctx, depth),
        Check::And(items) => items.iter().all(|item| evaluate_at(item, ctx, depth)),
        Check::Or(items) => items.iter().any(|item| evaluate_at(item, ctx, depth)),
    }
}

/// oslo's `GenericCheck`: a literal kind (`True`, `'x'`, `42`) compares
/// with the rendered match; otherwise the kind names a credential field.
fn generic_matches(kind: &str, wanted: &str, credentials: &Credentials) -> bool {
    if let Some(literal) = python_literal(kind) {
        return literal == wanted;
    }
    let mut path = kind.split('.');
    let (Some(key), None) = (path.next(), path.next()) else {
        // Dotted paths need nested dicts; every credential value is a
        // scalar or a list of strings, where Python would raise.
        return false;
    };
    match credential_value(credentials, key) {
        Some(CredValue::Str(value)) => value == wanted,
        Some(CredValue::Null) => wanted == "None",
        Some(CredValue::Bool(value)) => wanted == if value { "True" } else { "False" },
        Some(CredValue::List(values)) => values.iter().any(|value| value == wanted),
        None => false,
    }
}

/// A credential as oslo.context's `to_policy_values()` renders it.
enum CredValue<'a> {
    Str(&'a str),
    Null,
    Bool(bool),
    List(&'a [String]),
}

fn credential_value<'a>(credentials: &'a Credentials, key: &str) -> Option<CredValue<'a>> {
    let optional = |value: &'a Option<String>| match value {
        Some(value) => CredValue::Str(value),
        None => CredValue::Null,
    };
    Some(match key {
        "user_id" => CredValue::Str(&credentials.user_id),
        "project_id" => optional(&credentials.project_id),
        "system_scope" => optional(&credentials.system_scope),
        // oslo.policy copies a truthy system_scope to `system`.
        "system" => match credentials.system_scope.as_deref() {
            Some(scope) if !scope.is_empty() => CredValue::Str(scope),
            _ => return None,
        },
        "roles" => CredValue::List(&credentials.roles),
        "service_roles" => match &credentials.service {
            Some(service) => CredValue::List(&service.roles),
            None => CredValue::List(&[]),
        },
        "is_admin_project" => CredValue::Bool(credentials.is_admin_project),
        "domain_id" => optional(&credentials.domain_id),
        "user_domain_id" => optional(&credentials.user_domain_id),
        "project_domain_id" => optional(&credentials.project_domain_id),
        "service_user_id" => match &credentials.service {
            Some(service) => CredValue::Str(&service.user_id),
            None => CredValue::Null,
        },
        "service_user_domain_id" => service_optional(credentials, |s| &s.user_domain_id),
        "service_project_id" => service_optional(credentials, |s| &s.project_id),
        "service_project_domain_id" => service_optional(credentials, |s| &s.project_domain_id),
        _ => return None,
    })
}

fn service_optional<'a>(
    credentials: &'a Credentials,
    field: fn(&'a ServiceCredentials) -> &'a Option<String>,
) -> CredValue<'a> {
    match credentials.service.as_ref().map(field) {
        Some(Some(value)) => CredValue::Str(value),
        _ => CredValue::Null,
    }
}

/// `str(ast.literal_eval(kind))` for the literal forms a kind can take
/// (None, booleans, integers in any base, floats, simple strings); None
/// when the kind is a credential name instead.
fn python_literal(kind: &str) -> Option<String> {
    match kind {
        "True" | "False" | "None" => return Some(kind.to_owned()),
        _ => {}
    }
    let mut chars = kind.chars();
    if let (Some(first), Some(last)) = (chars.next(), chars.next_back())
        && first == last
        && (first == '\'' || first == '"')
    {
        let inner = chars.as_str();
        // Escapes and embedded quotes need Python's string grammar.
        if inner.contains(['\\', first]) {
            return None;
        }
        return Some(inner.to_owned());
    }
    let (negative, number) = match kind.as_bytes().first() {
        Some(b'-') => (true, &kind[1..]),
        Some(b'+') => (false, &kind[1..]),
        _ => (false, kind),
    };
    let sign = |text: String| {
        if negative && text != "0" && text != "0.0" {
            format!("-{text}")
        } else if negative && text == "0.0" {
            "-0.0".to_owned()
        } else {
            text
        }
    };
    if let Some(integer) = python_integer(number) {
        return Some(sign(integer));
    }
    python_float(number).map(sign)
}

/// Python's digit groups: digits with single underscores between them.
fn python_digits(text: &str, radix: u32) -> Option<String> {
    if text.is_empty() || text.starts_with('_') || text.ends_with('_') || text.contains("__") {
        return None;
    }
    let digits: String = text.chars().filter(|c| *c != '_').collect();
    digits.chars().all(|c| c.is_digit(radix)).then_some(digits)
}

/// An integer literal's `str()`: decimal (no leading zeros but `0`),
/// `0x`, `0o`, `0b`.
fn python_integer(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(rest) = lower.strip_prefix(prefix) {
            // `0x_1f` is valid: one underscore may follow the prefix.
            let digits = python_digits(rest.strip_prefix('_').unwrap_or(rest), radix)?;
            return u128::from_str_radix(&digits, radix)
                .ok()
                .map(|value| value.to_string());
        }
    }
    let digits = python_digits(text, 10)?;
    let trimmed = digits.trim_start_matches('0');
    if trimmed.is_empty() {
        return Some("0".to_owned());
    }
    // `007` is a syntax error in Python 3.
    if trimmed.len() != digits.len() {
        return None;
    }
    Some(trimmed.to_owned())
}

/// A float literal's `str()` (Python's shortest round-trip `repr`).
fn python_float(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let (mantissa, exponent) = match lower.split_once('e') {
        Some((mantissa, exponent)) => (mantissa, Some(exponent)),
        None => (lower.as_str(), None),
    };
    let (whole, fraction) = match mantissa.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (mantissa, None),
    };
    // A float needs a point or an exponent; digits on at least one side.
    if fraction.is_none() && exponent.is_none() {
        return None;
    }
    let whole = if whole.is_empty() {
        String::new()
    } else {
        python_digits(whole, 10)?
    };
    let fraction = match fraction {
        Some("") | None => String::new(),
        Some(fraction) => python_digits(fraction, 10)?,
    };
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let exponent = match exponent {
        None => String::new(),
        Some(exponent) => {
            let (sign, digits) = match exponent.as_bytes().first() {
                Some(b'-') => ("-", &exponent[1..]),
                Some(b'+') => ("", &exponent[1..]),
                _ => ("", exponent),
            };
            format!("e{sign}{}", python_digits(digits, 10)?)
        }
    };
    let value: f64 = format!("{whole}.{fraction}{exponent}").parse().ok()?;
    Some(float_repr(value))
}

/// Python's `repr(float)`: the shortest digits that round-trip, fixed
/// notation for exponents from -4 to 15, else `d.ddde+XX`.
fn float_repr(value: f64) -> String {
    if value.is_infinite() {
        return "inf".to_owned();
    }
    let scientific = format!("{value:e}");
    let Some((digits, exponent)) = scientific.split_once('e') else {
        return scientific;
    };
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = digits.chars().filter(char::is_ascii_digit).collect();
    if (-4..16).contains(&exponent) {
        let point = exponent + 1;
        if point <= 0 {
            let zeros = "0".repeat(point.unsigned_abs() as usize);
            return format!("0.{zeros}{digits}");
        }
        let point = point as usize;
        if digits.len() <= point {
            return format!("{digits}{}.0", "0".repeat(point - digits.len()));
        }
        return format!("{}.{}", &digits[..point], &digits[point..]);
    }
    let (first, rest) = digits.split_at(1);
    let mantissa = if rest.is_empty() {
        first.to_owned()
    } else {
        format!("{first}.{rest}")
    };
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs())
}

/// Python's `pattern % target` for the forms policies use: `%(key)s` and
/// `%%`. None stands for the KeyError (or any other formatting error) that
/// makes oslo's check deny.
fn interpolate(pattern: &str, target: &Target) -> Option<String> {
    if !pattern.contains('%') {
        return Some(pattern.to_owned());
    }
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('(') => {
                // Python matches nested parentheses inside the key.
                let mut key = String::new();
                let mut depth = 1usize;
                loop {
                    let next = chars.next()?;
                    match next {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    key.push(next);
                }
                // Only the `s` conversion is supported; flags, widths and
                // other conversions count as a formatting error.
                if chars.next()? != 's' {
                    return None;
                }
                out.push_str(target_value(target, &key)?);
            }
            _ => return None,
        }
    }
    Some(out)
}

/// A target entry as Python renders it (a None project prints as `None`);
/// None for a key the target does not have.
fn target_value<'a>(target: &'a Target, key: &str) -> Option<&'a str> {
    match key {
        "project_id" => Some(target.project_id.as_deref().unwrap_or("None")),
        "user_id" => target.user_id.as_deref(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(rule: &str) -> String {
        match parse(rule) {
            Ok(check) => check.to_string(),
            Err(err) => format!("error: {err}"),
        }
    }

    fn creds(project: Option<&str>, roles: &[&str], system: Option<&str>) -> Credentials {
        Credentials {
            user_id: "alice".to_owned(),
            project_id: project.map(str::to_owned),
            roles: roles.iter().map(|role| (*role).to_owned()).collect(),
            system_scope: system.map(str::to_owned),
            is_admin_project: true,
            ..Credentials::default()
        }
    }

    fn eval_with(rule: &str, credentials: &Credentials, target: &Target) -> bool {
        let rules = HashMap::new();
        let ctx = Context {
            rules: &rules,
            credentials,
            target,
        };
        parse(rule).is_ok_and(|check| evaluate(&check, &ctx))
    }

    #[test]
    fn precedence_matches_oslo_rendering() {
        assert_eq!(shown("a:1 or b:2 and c:3"), "(a:1 or (b:2 and c:3))");
        assert_eq!(shown("a:1 and b:2 or c:3"), "((a:1 and b:2) or c:3)");
        assert_eq!(
            shown("a:1 and b:2 or c:3 and d:4"),
            "((a:1 and b:2) or (c:3 and d:4))"
        );
        assert_eq!(
            shown("a:1 or b:2 and c:3 and d:4"),
            "(a:1 or (b:2 and c:3 and d:4))"
        );
        assert_eq!(shown("not a:1 and b:2"), "(not a:1 and b:2)");
        assert_eq!(shown("a:1 and not b:2"), "(a:1 and not b:2)");
        assert_eq!(shown("(a:1 or b:2) and c:3"), "((a:1 or b:2) and c:3)");
        assert_eq!(shown("not (a:1 or b:2)"), "not (a:1 or b:2)");
        assert_eq!(shown("((role:admin))"), "role:admin");
        assert_eq!(
            shown("role:a OR role:b AND NOT role:c"),
            "(role:a or (role:b and not role:c))"
        );
    }

    #[test]
    fn special_and_atomic_checks() {
        assert_eq!(parse(""), Ok(Check::Accept));
        assert_eq!(parse("@"), Ok(Check::Accept));
        assert_eq!(parse("!"), Ok(Check::Reject));
        assert_eq!(
            parse("rule:admin_api"),
            Ok(Check::Rule("admin_api".to_owned()))
        );
        assert_eq!(parse("role:Admin"), Ok(Check::Role("Admin".to_owned())));
        assert_eq!(
            parse("project_id:%(project_id)s"),
            Ok(Check::Generic {
                kind: "project_id".to_owned(),
                pattern: "%(project_id)s".to_owned()
            })
        );
        // Only the first colon splits.
        assert_eq!(shown("role:compute:admin"), "role:compute:admin");
        // The target placeholder's parentheses stay inside the check.
        assert_eq!(
            shown("(project_id:%(project_id)s)"),
            "project_id:%(project_id)s"
        );
    }

    #[test]
    fn refuses_what_oslo_fails_closed() {
        for bad in [
            "   ",
            "role:a role:b",
            "(role:a",
            "role:a)",
            "role:a and",
            "or role:a",
            "()",
            "'quoted' or role:a",
            "admin",
            "http://example.com/check",
            "https:x",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
        assert_eq!(
            parse("admin"),
            Err(ParseError::NotACheck("admin".to_owned()))
        );
    }

    #[test]
    fn references_lists_rule_checks() {
        let check = parse("rule:a or (role:x and not rule:b)");
        assert_eq!(
            check.map(|c| c.references().join(",")),
            Ok("a,b".to_owned())
        );
    }

    #[test]
    fn role_checks_ignore_case() {
        let target = Target::default();
        let alice = creds(Some("p1"), &["Admin"], None);
        assert!(eval_with("role:admin", &alice, &target));
        assert!(eval_with("role:ADMIN", &alice, &target));
        assert!(!eval_with("role:reader", &alice, &target));
        // Generic checks on the role list are exact.
        assert!(eval_with("roles:Admin", &alice, &target));
        assert!(!eval_with("roles:admin", &alice, &target));
    }

    #[test]
    fn generic_checks_substitute_the_target() {
        let alice = creds(Some("p1"), &["reader"], None);
        let own = Target {
            project_id: Some("p1".to_owned()),
            user_id: None,
        };
        let other = Target {
            project_id: Some("p2".to_owned()),
            user_id: None,
        };
        let rule = "role:reader and project_id:%(project_id)s";
        assert!(eval_with(rule, &alice, &own));
        assert!(!eval_with(rule, &alice, &other));
        // Unknown target keys deny, like Python's KeyError.
        assert!(!eval_with("project_id:%(tenant_id)s", &alice, &own));
        // Absent values render as "None", as Python's `%` does.
        let system = creds(None, &["reader"], Some("all"));
        assert!(eval_with(
            "project_id:%(project_id)s",
            &system,
            &Target::default()
        ));
        assert!(eval_with("user_id:alice", &alice, &own));
        assert!(!eval_with("unknown_field:x", &alice, &own));
        assert!(!eval_with("project_id.sub:p1", &alice, &own));
    }

    #[test]
    fn system_and_literal_generic_checks() {
        let target = Target::default();
        let system = creds(None, &["admin"], Some("all"));
        let project = creds(Some("p1"), &["admin"], None);
        assert!(eval_with("system_scope:all", &system, &target));
        assert!(eval_with("system:all", &system, &target));
        assert!(!eval_with("system:all", &project, &target));
        assert!(eval_with("is_admin_project:True", &project, &target));
        assert!(eval_with("domain_id:None", &project, &target));
        assert!(eval_with("True:True", &project, &target));
        assert!(!eval_with("False:True", &project, &target));
        assert!(eval_with("'member':member", &project, &target));
        assert!(!eval_with("-007:x", &project, &target));
        assert!(eval_with("+42:42", &project, &target));
    }

    #[test]
    fn python_literals() {
        assert_eq!(python_literal("True").as_deref(), Some("True"));
        assert_eq!(python_literal("\"x y\"").as_deref(), Some("x y"));
        assert_eq!(python_literal("-0").as_deref(), Some("0"));
        assert_eq!(python_literal("-12").as_deref(), Some("-12"));
        assert_eq!(python_literal("007"), None);
        assert_eq!(python_literal("1_000").as_deref(), Some("1000"));
        assert_eq!(python_literal("0x1F").as_deref(), Some("31"));
        assert_eq!(python_literal("0b_101").as_deref(), Some("5"));
        assert_eq!(python_literal("1__0"), None);
        assert_eq!(python_literal("0.5").as_deref(), Some("0.5"));
        assert_eq!(python_literal(".5").as_deref(), Some("0.5"));
        assert_eq!(python_literal("5.").as_deref(), Some("5.0"));
        assert_eq!(python_literal("1e3").as_deref(), Some("1000.0"));
        assert_eq!(python_literal("1e16").as_deref(), Some("1e+16"));
        assert_eq!(python_literal("1.5e-5").as_deref(), Some("1.5e-05"));
        assert_eq!(python_literal("0.0001").as_deref(), Some("0.0001"));
        assert_eq!(python_literal("-2.50").as_deref(), Some("-2.5"));
        assert_eq!(python_literal("007.5").as_deref(), Some("7.5"));
        assert_eq!(python_literal("1_0.0_1").as_deref(), Some("10.01"));
        assert_eq!(python_literal("."), None);
        assert_eq!(python_literal("e5"), None);
        assert_eq!(python_literal("project_id"), None);
        assert_eq!(python_literal("'"), None);
    }

    #[test]
    fn interpolation() {
        let target = Target {
            project_id: Some("p(1)".to_owned()),
            user_id: None,
        };
        assert_eq!(interpolate("plain", &target).as_deref(), Some("plain"));
        assert_eq!(
            interpolate("%(project_id)s", &target).as_deref(),
            Some("p(1)")
        );
        assert_eq!(
            interpolate("%(user_id)s", &target),
            None,
            "no user_id key: oslo's KeyError"
        );
        assert_eq!(interpolate("100%%", &target).as_deref(), Some("100%"));
        assert_eq!(interpolate("%(project_id)d", &target), None);
        assert_eq!(interpolate("%(project_id", &target), None);
        assert_eq!(interpolate("%s", &target), None);
        assert_eq!(interpolate("%(other)s", &target), None);
    }

    #[test]
    fn rule_references_fall_back_to_default() {
        let mut rules = HashMap::new();
        rules.insert("a".to_owned(), Check::Rule("missing".to_owned()));
        let alice = creds(Some("p1"), &["x"], None);
        let target = Target::default();
        let ctx = Context {
            rules: &rules,
            credentials: &alice,
            target: &target,
        };
        assert!(!evaluate(&Check::Rule("a".to_owned()), &ctx));
        rules.insert(DEFAULT_RULE.to_owned(), Check::Role("x".to_owned()));
        let ctx = Context {
            rules: &rules,
            credentials: &alice,
            target: &target,
        };
        assert!(evaluate(&Check::Rule("a".to_owned()), &ctx));
    }

    #[test]
    fn self_reference_stops_at_depth_limit() {
        let mut rules = HashMap::new();
        rules.insert("loop".to_owned(), Check::Rule("loop".to_owned()));
        let alice = creds(Some("p1"), &[], None);
        let target = Target::default();
        let ctx = Context {
            rules: &rules,
            credentials: &alice,
            target: &target,
        };
        assert!(!evaluate(&Check::Rule("loop".to_owned()), &ctx));
    }
}
