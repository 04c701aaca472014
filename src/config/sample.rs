//! `placement config sample`: every option of the table with its help and
//! default, commented out, in oslo-config-generator's layout; and the
//! compact list `placement serve --help` shows.

use super::options::{self, Default, Kind, Opt};

fn default_text(option: &Opt) -> String {
    match option.default {
        Default::None => String::new(),
        Default::Text(text) => text.to_owned(),
        Default::Computed(how) => format!("<{how}>"),
    }
}

/// Wraps `text` at `width` columns, each line starting with `prefix`.
fn wrap(text: &str, width: usize, prefix: &str) -> String {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && prefix.len() + line.len() + 1 + word.len() > width {
            lines.push(format!("{prefix}{line}"));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(format!("{prefix}{line}"));
    }
    lines.join("\n")
}

/// The whole sample file.
pub fn sample() -> String {
    let mut out = String::new();
    let mut section = "";
    for option in options::OPTIONS {
        if option.section != section {
            if !section.is_empty() {
                out.push('\n');
            }
            section = option.section;
            out.push_str(&format!("[{section}]\n"));
        }
        out.push('\n');
        let mut kind = option.kind.describe().to_owned();
        if let Kind::Choice(choices) = option.kind {
            kind = format!("{kind}; one of {}", choices.join(", "));
        }
        out.push_str(&wrap(&format!("{} ({kind})", option.help), 79, "# "));
        out.push('\n');
        if let Some(legacy) = option.legacy {
            out.push_str(&format!("# Also read from ${}.\n", legacy.variable));
        }
        for (old_section, old_name) in option.deprecated {
            out.push_str(&format!("# Deprecated name: [{old_section}] {old_name}\n"));
        }
        out.push_str(&format!("# Environment: {}\n", option.environment_name()));
        out.push_str(&format!("#{} = {}\n", option.name, default_text(option)));
    }
    out
}

/// One line per option, `[section] name = default`, for `--help`.
pub fn summary() -> String {
    options::OPTIONS
        .iter()
        .map(|option| {
            let default = default_text(option);
            if default.is_empty() {
                format!("  [{}] {}", option.section, option.name)
            } else {
                format!("  [{}] {} = {default}", option.section, option.name)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_has_every_option_once_commented_out() {
        let text = sample();
        for option in options::OPTIONS {
            let line = format!("#{} = {}", option.name, default_text(option));
            assert!(text.lines().any(|l| l == line), "{line}");
        }
        assert!(text.contains("[keystone_authtoken]\n"));
        assert!(
            text.lines()
                .all(|line| line.len() <= 79 || !line.starts_with("# "))
        );
        // Every line is a comment, a section header or blank: the sample
        // as written changes nothing.
        assert!(
            text.lines()
                .all(|line| line.is_empty() || line.starts_with('#') || line.starts_with('['))
        );
    }

    #[test]
    fn the_sample_parses_as_the_defaults() {
        let dir = std::env::temp_dir().join(format!("placement-sample-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("placement.conf");
        std::fs::write(&path, sample()).expect("write");
        let files = super::super::ConfigFiles {
            files: vec![path],
            dirs: Vec::new(),
        };
        let settings = super::super::Settings::load(&files, &|_| None).expect("parses");
        assert!(settings.warnings.is_empty(), "{:?}", settings.warnings);
        let _ = std::fs::remove_dir_all(dir);
    }
}
