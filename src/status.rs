//! `placement status upgrade check`: the checks to run before restarting on
//! new code, and their report printed as oslo.upgradecheck prints it (a
//! PrettyTable, or JSON), with its exit codes. Answers to upstream's
//! `placement/cmd/status.py` and to `oslo_upgradecheck/upgradecheck.py` and
//! `common_checks.py`.

use std::path::PathBuf;

use crate::policy::{Defaults, Enforcer};
use crate::storage::{Connection, Database, StorageError, upgrade_checks};

/// A check's verdict; the numbers are oslo.upgradecheck's `Code`, and the
/// worst of a report is the command's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Code {
    /// Nothing to do.
    Success = 0,
    /// Worth a look; the upgrade may still be fine.
    Warning = 1,
    /// Fix this before upgrading.
    Failure = 2,
}

impl Code {
    /// The word the table prints (`UPGRADE_CHECK_MSG_MAP`).
    fn label(self) -> &'static str {
        match self {
            Code::Success => "Success",
            Code::Warning => "Warning",
            Code::Failure => "Failure",
        }
    }
}

/// One check's outcome (oslo.upgradecheck's `Result` with its check name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// The name shown as `Check:`.
    pub name: String,
    /// The verdict.
    pub code: Code,
    /// What was found and what to do, usually only for a warning or
    /// failure; `None` prints as `None`, as upstream's does.
    pub details: Option<String>,
}

impl CheckResult {
    /// A check that found nothing to do.
    pub fn success(name: &str) -> CheckResult {
        CheckResult {
            name: name.to_owned(),
            code: Code::Success,
            details: None,
        }
    }

    /// A check that found something worth a look.
    pub fn warning(name: &str, details: String) -> CheckResult {
        CheckResult {
            name: name.to_owned(),
            code: Code::Warning,
            details: Some(details),
        }
    }

    /// A check that found something to fix before upgrading.
    pub fn failure(name: &str, details: String) -> CheckResult {
        CheckResult {
            name: name.to_owned(),
            code: Code::Failure,
            details: Some(details),
        }
    }
}

/// What `placement status upgrade check` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// Every check ran, in order.
    Checked(Vec<CheckResult>),
    /// A check could not run (the database unreachable, a query failing):
    /// upstream's command stops at the first exception, prints it and
    /// exits 255.
    Error(String),
}

impl Report {
    /// Appends the result of a check run after these. Nothing is added to
    /// an `Error`: upstream runs no check after one that raised.
    pub fn push(&mut self, result: CheckResult) {
        if let Report::Checked(results) = self {
            results.push(result);
        }
    }

    /// The command's exit code: the worst verdict (0, 1 or 2), or 255 for
    /// an error, so that it is not taken for a verdict.
    pub fn exit_code(&self) -> u8 {
        match self {
            Report::Checked(results) => results
                .iter()
                .map(|result| result.code as u8)
                .max()
                .unwrap_or(Code::Success as u8),
            Report::Error(_) => 255,
        }
    }

    /// The report as oslo.upgradecheck prints it, without the final newline
    /// `print` adds:
    ///
    /// ```text
    /// +-------------------------------+
    /// | Upgrade Check Results         |
    /// +-------------------------------+
    /// | Check: Database Schema        |
    /// | Result: Success               |
    /// | Details: None                 |
    /// +-------------------------------+
    /// ```
    ///
    /// Details are wrapped at 60 columns, later lines indented by two. An
    /// error prints as upstream's `Error:` and the cause.
    pub fn render_table(&self) -> String {
        match self {
            Report::Checked(results) => {
                let cells: Vec<String> = results
                    .iter()
                    .map(|result| {
                        let details = match &result.details {
                            Some(details) => {
                                wrap(details, DETAILS_WIDTH, DETAILS_INDENT).join("\n")
                            }
                            None => "None".to_owned(),
                        };
                        format!(
                            "Check: {}\nResult: {}\nDetails: {details}",
                            result.name,
                            result.code.label()
                        )
                    })
                    .collect();
                pretty_table(TITLE, &cells)
            }
            Report::Error(message) => error_text(message),
        }
    }

    /// The report as `--json` prints it, byte for byte as Python's
    /// `json.dumps` writes it: `{"name": "Upgrade Check Results", "checks":
    /// [{"check": ..., "result": 0, "details": null}]}`. An error prints as
    /// in the table: upstream fails before it chooses a format.
    pub fn render_json(&self) -> String {
        match self {
            Report::Checked(results) => {
                let checks: Vec<String> = results
                    .iter()
                    .map(|result| {
                        let details = match &result.details {
                            Some(details) => python_json_string(details),
                            None => "null".to_owned(),
                        };
                        format!(
                            "{{\"check\": {}, \"result\": {}, \"details\": {details}}}",
                            python_json_string(&result.name),
                            result.code as u8
                        )
                    })
                    .collect();
                format!(
                    "{{\"name\": {}, \"checks\": [{}]}}",
                    python_json_string(TITLE),
                    checks.join(", ")
                )
            }
            Report::Error(message) => error_text(message),
        }
    }
}

/// Runs upstream's checks, then this server's, against the database at
/// `database_url` and the policy file the configuration names (None: no
/// file). Further checks can be appended with [`Report::push`].
pub fn upgrade_check(database_url: &str, policy_files: &[PathBuf], defaults: Defaults) -> Report {
    match run_checks(database_url, policy_files, defaults) {
        Ok(results) => Report::Checked(results),
        Err(error) => Report::Error(error.to_string()),
    }
}

const TITLE: &str = "Upgrade Check Results";
const DETAILS_WIDTH: usize = 60;
const DETAILS_INDENT: &str = "  ";

const MISSING_ROOT_PROVIDER_IDS: &str = "Missing Root Provider IDs";
const INCOMPLETE_CONSUMERS: &str = "Incomplete Consumers";
const POLICY_JSON: &str = "Policy File JSON to YAML Migration";
const DATABASE_SCHEMA: &str = "Database Schema";
const STANDARD_DATA: &str = "Standard Resource Classes and Traits";
const POLICY_FILE: &str = "Policy File";

/// The remedy of both data checks, upstream's adapted: this server writes
/// neither kind of row, so such data came from an upstream database.
const ONLINE_DATA_MIGRATIONS: &str = "Run upstream's \"placement-manage db \
    online_data_migrations\" command on the database this data came from, then \
    copy it again: this server has no equivalent.";

/// `common_checks.check_policy_json`'s text.
const POLICY_JSON_DETAILS: &str = "Your policy file is JSON-formatted which is deprecated. \
    You need to switch to YAML-formatted file. Use the ``oslopolicy-convert-json-to-yaml`` \
    tool to convert the existing JSON-formatted files to YAML in a backwards-compatible \
    manner: https://docs.openstack.org/oslo.policy/latest/cli/oslopolicy-convert-json-to-yaml.html.";

/// How many missing names a standard-data warning lists before it counts
/// the rest: an empty table would otherwise list all 377 traits.
const MISSING_NAMES_SHOWN: usize = 5;

fn run_checks(
    database_url: &str,
    policy_files: &[PathBuf],
    defaults: Defaults,
) -> Result<Vec<CheckResult>, StorageError> {
    let database = Database::connect(database_url, 1)?;
    let mut connection = database.connection()?;
    Ok(vec![
        missing_root_provider_ids(&mut connection)?,
        incomplete_consumers(&mut connection)?,
        policy_json(policy_files),
        database_schema(&mut connection)?,
        standard_data(&mut connection)?,
        policy_loads(policy_files, defaults),
    ])
}

fn missing_root_provider_ids(connection: &mut Connection) -> Result<CheckResult, StorageError> {
    if upgrade_checks::count_missing_root_provider_ids(connection)? == 0 {
        return Ok(CheckResult::success(MISSING_ROOT_PROVIDER_IDS));
    }
    Ok(CheckResult::failure(
        MISSING_ROOT_PROVIDER_IDS,
        format!(
            "There is at least one resource provider table record which misses its root \
             provider id. {ONLINE_DATA_MIGRATIONS}"
        ),
    ))
}

fn incomplete_consumers(connection: &mut Connection) -> Result<CheckResult, StorageError> {
    let missing = upgrade_checks::count_incomplete_consumers(connection)?;
    if missing == 0 {
        return Ok(CheckResult::success(INCOMPLETE_CONSUMERS));
    }
    Ok(CheckResult::warning(
        INCOMPLETE_CONSUMERS,
        format!(
            "There are {missing} incomplete consumers table records for existing allocations. \
             {ONLINE_DATA_MIGRATIONS}"
        ),
    ))
}

/// Failure when the policy file holds JSON. As upstream's `find_file`, a
/// file that is not there (or cannot be read) is no JSON file; the
/// "Policy File" check reports why it cannot be read.
fn policy_json(policy_files: &[PathBuf]) -> CheckResult {
    let any_json = policy_files
        .iter()
        .any(|path| std::fs::read_to_string(path).is_ok_and(|text| is_json(&text)));
    if any_json {
        CheckResult::failure(POLICY_JSON, POLICY_JSON_DETAILS.to_owned())
    } else {
        CheckResult::success(POLICY_JSON)
    }
}

/// oslo.utils' `fileutils.is_json`: the whole text is one JSON value.
fn is_json(text: &str) -> bool {
    serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
}

fn database_schema(connection: &mut Connection) -> Result<CheckResult, StorageError> {
    let pending = upgrade_checks::pending_migrations(connection)?;
    Ok(match pending.len() {
        0 => CheckResult::success(DATABASE_SCHEMA),
        count => CheckResult::failure(
            DATABASE_SCHEMA,
            format!(
                "{count} database {} not applied: {}. Run the \"placement migrate\" command.",
                if count == 1 {
                    "migration is"
                } else {
                    "migrations are"
                },
                pending.join(", ")
            ),
        ),
    })
}

/// A warning, not a failure: the server adds missing standard names every
/// time it starts, as upstream's `ensure_sync` does.
fn standard_data(connection: &mut Connection) -> Result<CheckResult, StorageError> {
    let classes = upgrade_checks::missing_standard_resource_classes(connection)?;
    let traits = upgrade_checks::missing_standard_traits(connection)?;
    let mut found = Vec::new();
    if !classes.is_empty() {
        found.push(missing_names(
            "resource class",
            "resource classes",
            &classes,
        ));
    }
    if !traits.is_empty() {
        found.push(missing_names("trait", "traits", &traits));
    }
    Ok(if found.is_empty() {
        CheckResult::success(STANDARD_DATA)
    } else {
        CheckResult::warning(
            STANDARD_DATA,
            format!(
                "{} The \"placement migrate\" command or the server's next start adds them.",
                found.join(" ")
            ),
        )
    })
}

/// "3 standard traits are missing: A, B, C." with at most
/// `MISSING_NAMES_SHOWN` names.
fn missing_names(singular: &str, plural: &str, names: &[&str]) -> String {
    let shown = names[..names.len().min(MISSING_NAMES_SHOWN)].join(", ");
    match names.len() {
        1 => format!("1 standard {singular} is missing: {shown}."),
        count if count > MISSING_NAMES_SHOWN => format!(
            "{count} standard {plural} are missing: {shown} and {} more.",
            count - MISSING_NAMES_SHOWN
        ),
        count => format!("{count} standard {plural} are missing: {shown}."),
    }
}

/// Failure when the server would refuse the policy file at start-up.
fn policy_loads(policy_files: &[PathBuf], defaults: Defaults) -> CheckResult {
    match Enforcer::from_files(defaults, policy_files) {
        Ok(_) => CheckResult::success(POLICY_FILE),
        Err(error) => CheckResult::failure(POLICY_FILE, error.to_string()),
    }
}

/// What upstream prints for an exception, with the cause in place of the
/// traceback.
fn error_text(message: &str) -> String {
    format!("Error:\n{message}")
}

/// A one-column PrettyTable as oslo.upgradecheck configures it
/// (`hrules=ALL`, `align='l'`): a rule above and below the header and
/// every row, each line padded to the widest.
fn pretty_table(title: &str, cells: &[String]) -> String {
    let rows: Vec<Vec<&str>> = std::iter::once(title)
        .chain(cells.iter().map(String::as_str))
        .map(|cell| cell.split('\n').collect())
        .collect();
    let width = rows
        .iter()
        .flatten()
        .map(|line| display_width(line))
        .max()
        .unwrap_or(0);
    let rule = format!("+{}+", "-".repeat(width + 2));
    let mut out = vec![rule.clone()];
    for row in rows {
        for line in row {
            let padding = " ".repeat(width - display_width(line));
            out.push(format!("| {line}{padding} |"));
        }
        out.push(rule.clone());
    }
    out.join("\n")
}

/// Columns a line takes as PrettyTable measures it with wcwidth: control
/// characters take none, every other character one. (wcwidth also gives
/// East Asian wide characters two and combining marks none; the names and
/// messages here need neither.)
fn display_width(line: &str) -> usize {
    line.chars().filter(|c| !c.is_control()).count()
}

/// `json.dumps` of a string: ASCII only, other characters as `\uXXXX`
/// (UTF-16 units), the short escapes Python uses.
fn python_json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(character),
            _ => {
                for unit in character.encode_utf16(&mut [0; 2]) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// Python's `textwrap.wrap(text, width, subsequent_indent=indent)` with
/// its other defaults: whitespace made spaces (tabs expanded to 8), words
/// split after hyphens, over-long words broken, spaces dropped at breaks.
fn wrap(text: &str, width: usize, subsequent_indent: &str) -> Vec<String> {
    let text = munge_whitespace(text);
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let end = chunk_end(&text, start);
        chunks.push(text[start..end].to_vec());
        start = end;
    }
    wrap_chunks(chunks, width, subsequent_indent)
}

/// `TextWrapper._munge_whitespace`: `expandtabs()`, then each of Python's
/// ASCII whitespace characters becomes one space.
fn munge_whitespace(text: &str) -> Vec<char> {
    const TAB_SIZE: usize = 8;
    let mut out = Vec::with_capacity(text.len());
    let mut column = 0;
    for character in text.chars() {
        match character {
            '\t' => {
                let spaces = TAB_SIZE - column % TAB_SIZE;
                out.extend(std::iter::repeat_n(' ', spaces));
                column += spaces;
            }
            '\n' | '\r' => {
                out.push(' ');
                column = 0;
            }
            '\u{b}' | '\u{c}' => {
                out.push(' ');
                column += 1;
            }
            other => {
                out.push(other);
                column += 1;
            }
        }
    }
    out
}

/// Where the chunk starting at `start` ends: `TextWrapper.wordsep_re`, whose
/// three alternatives are tried in its order. Only spaces are whitespace
/// once the text is munged.
fn chunk_end(text: &[char], start: usize) -> usize {
    let is = |index: usize, class: fn(char) -> bool| text.get(index).is_some_and(|&c| class(c));
    let run = |from: usize, of: char| text[from..].iter().take_while(|&&c| c == of).count();
    // Any whitespace.
    if text[start] == ' ' {
        return start + run(start, ' ');
    }
    // An em-dash between words: `(?<=wp) -{2,} (?=\w)`.
    let dashes = run(start, '-');
    if dashes >= 2 && start > 0 && is(start - 1, word_punct) && is(start + dashes, word) {
        return start + dashes;
    }
    // The shortest run of non-whitespace that ends after a hyphen within a
    // word, at the end of the word, or before an em-dash.
    let mut end = start + 1;
    loop {
        if text.get(end) == Some(&'-') && hyphen_breaks(text, end) {
            return end + 1;
        }
        if end == text.len() || text[end] == ' ' {
            return end;
        }
        if is(end - 1, word_punct) && run(end, '-') >= 2 && is(end + run(end, '-'), word) {
            return end;
        }
        end += 1;
    }
}

/// Whether the hyphen at `at` ends a chunk: it follows two letters or
/// letter-hyphen-letter, and a letter, an optional hyphen and a letter
/// follow it.
fn hyphen_breaks(text: &[char], at: usize) -> bool {
    let letter_at = |index: Option<usize>| {
        index
            .and_then(|index| text.get(index))
            .is_some_and(|&c| letter(c))
    };
    let hyphen_at = |index: Option<usize>| index.and_then(|index| text.get(index)) == Some(&'-');
    let back = |count: usize| at.checked_sub(count);
    let after = |count: usize| Some(at + count);
    let behind = (letter_at(back(2)) && letter_at(back(1)))
        || (letter_at(back(3)) && hyphen_at(back(2)) && letter_at(back(1)));
    let ahead = letter_at(after(1))
        && (letter_at(after(2)) || (hyphen_at(after(2)) && letter_at(after(3))));
    behind && ahead
}

/// Python's `\w`.
fn word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// textwrap's `letter`, `[^\d\W]`: a word character that is not a digit.
fn letter(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

/// textwrap's `word_punct`.
fn word_punct(c: char) -> bool {
    word(c) || "!\"'&.,?".contains(c)
}

/// `str.strip() == ''`: a chunk of whitespace, or an empty one.
fn is_blank(chunk: &[char]) -> bool {
    chunk.iter().all(|c| c.is_whitespace())
}

/// `TextWrapper._wrap_chunks` without `max_lines`.
fn wrap_chunks(mut chunks: Vec<Vec<char>>, width: usize, subsequent_indent: &str) -> Vec<String> {
    chunks.reverse();
    let mut lines: Vec<String> = Vec::new();
    while !chunks.is_empty() {
        let indent = if lines.is_empty() {
            ""
        } else {
            subsequent_indent
        };
        let width = width.saturating_sub(indent.chars().count());
        // Spaces that start any line but the first are dropped.
        if !lines.is_empty() && chunks.last().is_some_and(|chunk| is_blank(chunk)) {
            chunks.pop();
        }
        let mut line: Vec<Vec<char>> = Vec::new();
        let mut length = 0;
        while let Some(chunk) = chunks.pop_if(|chunk| length + chunk.len() <= width) {
            length += chunk.len();
            line.push(chunk);
        }
        if let Some(chunk) = chunks.last_mut()
            && chunk.len() > width
        {
            let space_left = if width < 1 { 1 } else { width - length };
            line.push(split_long_word(chunk, space_left));
        }
        if line.last().is_some_and(|chunk| is_blank(chunk)) {
            line.pop();
        }
        if !line.is_empty() {
            lines.push(format!(
                "{indent}{}",
                line.concat().iter().collect::<String>()
            ));
        }
    }
    lines
}

/// `TextWrapper._handle_long_word`: takes from `chunk` what fits in
/// `space_left`, up to its last hyphen there if something other than
/// hyphens comes before that hyphen.
fn split_long_word(chunk: &mut Vec<char>, space_left: usize) -> Vec<char> {
    let end = match chunk[..space_left].iter().rposition(|&c| c == '-') {
        Some(hyphen) if hyphen > 0 && chunk[..hyphen].iter().any(|&c| c != '-') => hyphen + 1,
        _ => space_left,
    };
    let rest = chunk.split_off(end);
    std::mem::replace(chunk, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(results: &[(&str, Code, Option<&str>)]) -> Report {
        Report::Checked(
            results
                .iter()
                .map(|(name, code, details)| CheckResult {
                    name: (*name).to_owned(),
                    code: *code,
                    details: details.map(str::to_owned),
                })
                .collect(),
        )
    }

    #[test]
    fn table_wraps_details_at_sixty_as_oslo_upgradecheck() {
        // Expected output printed by oslo.upgradecheck 2.8.0 and prettytable 3.18.0.
        let report = report(&[
            ("Missing Root Provider IDs", Code::Success, None),
            (
                "Incomplete Consumers",
                Code::Warning,
                Some(
                    "There are 3 incomplete consumers table records for existing allocations. \
                     Run the \"placement-manage db online_data_migrations\" command.",
                ),
            ),
        ]);
        assert_eq!(
            report.render_table(),
            "\
+----------------------------------------------------------------------+
| Upgrade Check Results                                                |
+----------------------------------------------------------------------+
| Check: Missing Root Provider IDs                                     |
| Result: Success                                                      |
| Details: None                                                        |
+----------------------------------------------------------------------+
| Check: Incomplete Consumers                                          |
| Result: Warning                                                      |
| Details: There are 3 incomplete consumers table records for existing |
|   allocations. Run the \"placement-manage db                          |
|   online_data_migrations\" command.                                   |
+----------------------------------------------------------------------+"
        );
    }

    #[test]
    fn table_breaks_after_hyphens_as_textwrap() {
        let report = report(&[(POLICY_JSON, Code::Failure, Some(POLICY_JSON_DETAILS))]);
        assert_eq!(
            report.render_table(),
            "\
+----------------------------------------------------------------------+
| Upgrade Check Results                                                |
+----------------------------------------------------------------------+
| Check: Policy File JSON to YAML Migration                            |
| Result: Failure                                                      |
| Details: Your policy file is JSON-formatted which is deprecated. You |
|   need to switch to YAML-formatted file. Use the                     |
|   ``oslopolicy-convert-json-to-yaml`` tool to convert the            |
|   existing JSON-formatted files to YAML in a backwards-              |
|   compatible manner: https://docs.openstack.org/oslo.policy/         |
|   latest/cli/oslopolicy-convert-json-to-yaml.html.                   |
+----------------------------------------------------------------------+"
        );
    }

    #[test]
    fn table_width_follows_the_title_when_cells_are_narrower() {
        let report = report(&[
            ("x", Code::Success, Some("")),
            ("y", Code::Warning, Some("   ")),
        ]);
        assert_eq!(
            report.render_table(),
            "\
+-----------------------+
| Upgrade Check Results |
+-----------------------+
| Check: x              |
| Result: Success       |
| Details:              |
+-----------------------+
| Check: y              |
| Result: Warning       |
| Details:              |
+-----------------------+"
        );
    }

    #[test]
    fn wrap_matches_python_textwrap() {
        // (text, lines) as Python 3.11's textwrap.wrap(text, 60, subsequent_indent='  ').
        let cases: &[(&str, &[&str])] = &[
            (
                "a\tb\tccc\td\nnext line\r\nand more\u{b}vt\u{c}ff  two  spaces   ",
                &[
                    "a       b       ccc     d next line  and more vt ff  two",
                    "  spaces",
                ],
            ),
            (
                "well-known self-evident long-long-long-winded x-y ab-cd \
                 a-b-c-d-e-f-g-h-i-j-k-l-m-n-o-p-q-r-s-t-u-v-w-x-y-z-a-b-c-d-e-f-g-h-i-j-k-l-m-n-o-p-q-r",
                &[
                    "well-known self-evident long-long-long-winded x-y ab-cd a-b-",
                    "  c-d-e-f-g-h-i-j-k-l-m-n-o-p-q-r-s-t-u-v-w-x-y-z-a-b-c-d-e-",
                    "  f-g-h-i-j-k-l-m-n-o-p-q-r",
                ],
            ),
            (
                "Hello there -- you goof-ball, use the -b option! word--word x---y ,--z --a \
                 a-- 9--9 co-op 1-2 ab1-cd A-B-C ab-1c ab-c-d abc--",
                &[
                    "Hello there -- you goof-ball, use the -b option! word--word",
                    "  x---y ,--z --a a-- 9--9 co-op 1-2 ab1-cd A-B-C ab-1c ab-",
                    "  c-d abc--",
                ],
            ),
            (
                "prefix zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-\
                 zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz and \
                 ------------------------------------------------------------------------a \
                 and 12345678901234567890123456789012345678901234567890123456789-1234",
                &[
                    "prefix zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-",
                    "  zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz and ---",
                    "  ----------------------------------------------------------",
                    "  -----------a and 12345678901234567890123456789012345678901",
                    "  234567890123456789-1234",
                ],
            ),
            (
                "123456789012345678901234567890123456789012345678901234567890 \
                 123456789012345678901234567890123456789012345678901234567 \
                 12345678901234567890123456789012345678901234567890123456789",
                &[
                    "123456789012345678901234567890123456789012345678901234567890",
                    // textwrap keeps the space a broken word leaves at the end.
                    "  123456789012345678901234567890123456789012345678901234567 ",
                    "  1234567890123456789012345678901234567890123456789012345678",
                    "  9",
                ],
            ),
            (
                "  leading spaces then a fairly long sentence that should wrap somewhere \
                 around here ok",
                &[
                    "  leading spaces then a fairly long sentence that should",
                    "  wrap somewhere around here ok",
                ],
            ),
            ("", &[]),
            ("   ", &[]),
        ];
        for (text, lines) in cases {
            assert_eq!(wrap(text, 60, "  "), *lines, "{text:?}");
        }
    }

    #[test]
    fn json_is_what_python_json_dumps_writes() {
        let report = report(&[
            ("Missing Root Provider IDs", Code::Success, None),
            (
                "unicode \u{e9}\u{4e2d}\u{1f600} \"q\" \\ /",
                Code::Failure,
                Some("caf\u{e9} \u{a0}\u{2014} \u{7f}\u{1}\u{b}\u{c}\u{8}\t\r\n"),
            ),
        ]);
        assert_eq!(
            report.render_json(),
            r#"{"name": "Upgrade Check Results", "checks": [{"check": "Missing Root Provider IDs", "result": 0, "details": null}, {"check": "unicode \u00e9\u4e2d\ud83d\ude00 \"q\" \\ /", "result": 2, "details": "caf\u00e9 \u00a0\u2014 \u007f\u0001\u000b\f\b\t\r\n"}]}"#
        );
    }

    #[test]
    fn exit_code_is_the_worst_result_or_255_for_an_error() {
        assert_eq!(report(&[]).exit_code(), 0);
        let mut checked = report(&[("a", Code::Warning, Some("w")), ("b", Code::Success, None)]);
        assert_eq!(checked.exit_code(), 1);
        checked.push(CheckResult::failure("c", "f".to_owned()));
        assert_eq!(checked.exit_code(), 2);
        let mut error = Report::Error("database unavailable".to_owned());
        error.push(CheckResult::success("d"));
        assert_eq!(error, Report::Error("database unavailable".to_owned()));
        assert_eq!(error.exit_code(), 255);
        assert_eq!(error.render_table(), "Error:\ndatabase unavailable");
        assert_eq!(error.render_json(), "Error:\ndatabase unavailable");
    }

    #[test]
    fn json_policy_is_told_by_content_not_name() {
        assert!(is_json("{\"a\": \"role:admin\"}\n"));
        assert!(is_json(" [1, 2] "));
        assert!(!is_json(""));
        assert!(!is_json("\"a\": \"role:admin\"\n"));
        assert!(!is_json("a: b\n"));
    }

    #[test]
    fn missing_names_counts_what_it_does_not_list() {
        assert_eq!(
            missing_names("trait", "traits", &["A"]),
            "1 standard trait is missing: A."
        );
        assert_eq!(
            missing_names("trait", "traits", &["A", "B"]),
            "2 standard traits are missing: A, B."
        );
        assert_eq!(
            missing_names("trait", "traits", &["A", "B", "C", "D", "E", "F", "G"]),
            "7 standard traits are missing: A, B, C, D, E and 2 more."
        );
    }
}
