//! Where option values come from, in oslo.config's order of precedence:
//! `OS_<SECTION>__<OPTION>` variables over the older variables this server
//! read before (`PORT`, `DATABASE_URL`, ...), over configuration files
//! (later files over earlier ones), over the table's defaults. Files are
//! the ones named on the command line, or `$OS_PLACEMENT_CONFIG_DIR/
//! placement.conf`, or upstream's search path (oslo.config `cfg.py`,
//! `placement/wsgi/__init__.py`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::ConfigError;
use super::options::{self, Opt};

/// Where a value was set, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    File(PathBuf),
    Environment(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::File(path) => write!(formatter, "{}", path.display()),
            Origin::Environment(variable) => write!(formatter, "${variable}"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Setting {
    pub value: String,
    pub origin: Origin,
}

/// The files and directories named on the command line.
#[derive(Clone, Debug, Default)]
pub struct ConfigFiles {
    pub files: Vec<PathBuf>,
    pub dirs: Vec<PathBuf>,
}

/// Every value set, by option, with what was wrong but not fatal.
#[derive(Debug, Default)]
pub struct Settings {
    values: HashMap<(&'static str, &'static str), Setting>,
    /// The files read, in order (their directories resolve relative paths).
    pub files_read: Vec<PathBuf>,
    /// Unknown options and sections, to be logged once logging is up.
    pub warnings: Vec<String>,
}

impl Settings {
    pub fn get(&self, option: &Opt) -> Option<&Setting> {
        self.values.get(&(option.section, option.name))
    }

    /// The directories of the files read and the directories named: where
    /// oslo looks for a relative `policy_file`.
    pub fn config_dirs(&self, files: &ConfigFiles) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self
            .files_read
            .iter()
            .filter_map(|file| file.parent().map(Path::to_path_buf))
            .collect();
        dirs.extend(files.dirs.iter().cloned());
        dirs.dedup();
        dirs
    }

    /// Reads the files, then the environment `lookup` gives.
    pub fn load(
        files: &ConfigFiles,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let mut settings = Settings::default();
        for path in discover(files, lookup)? {
            settings.read_file(&path)?;
        }
        settings.read_environment(lookup);
        Ok(settings)
    }

    /// Sets `[section] name` as a caller of the library does (an
    /// in-process server, a test); unknown names are ignored.
    pub fn set_value(&mut self, section: &str, name: &str, value: &str) {
        if let Some(option) = options::find(section, name) {
            self.set(
                option,
                value.to_owned(),
                Origin::Environment("(set in code)".to_owned()),
            );
        }
    }

    fn set(&mut self, option: &'static Opt, value: String, origin: Origin) {
        self.values
            .insert((option.section, option.name), Setting { value, origin });
    }

    fn read_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::File {
            path: path.to_path_buf(),
            reason: error.to_string(),
        })?;
        let parsed = ini::Ini::load_from_str_opt(
            &text,
            ini::ParseOption {
                enabled_quote: false,
                enabled_escape: false,
                enabled_indented_mutiline_value: true,
                ..ini::ParseOption::default()
            },
        )
        .map_err(|error| ConfigError::File {
            path: path.to_path_buf(),
            reason: error.to_string(),
        })?;
        for (section, properties) in parsed.iter() {
            // Keys before any section header are oslo's [DEFAULT] too.
            let section = section.unwrap_or("DEFAULT");
            for (name, value) in properties.iter() {
                let option = options::find(section, name).or_else(|| {
                    options::find_deprecated(section, name).inspect(|option| {
                        self.warnings.push(format!(
                            "{}: [{section}] {name} is deprecated; use [{}] {}",
                            path.display(),
                            option.section,
                            option.name
                        ));
                    })
                });
                match option {
                    Some(option) => {
                        self.set(option, unquote(value), Origin::File(path.to_path_buf()));
                    }
                    None => self.warnings.push(format!(
                        "{}: unknown option [{section}] {name} ignored",
                        path.display()
                    )),
                }
            }
        }
        self.files_read.push(path.to_path_buf());
        Ok(())
    }

    fn read_environment(&mut self, lookup: &dyn Fn(&str) -> Option<String>) {
        for option in options::OPTIONS {
            if let Some(legacy) = option.legacy
                && let Some(value) = lookup(legacy.variable)
                && !value.trim().is_empty()
            {
                // A value the translation refuses is kept as it was, so the
                // typed reader names it in its error.
                let value = (legacy.translate)(&value).unwrap_or(value);
                self.set(
                    option,
                    value,
                    Origin::Environment(legacy.variable.to_owned()),
                );
            }
            let variable = option.environment_name();
            if let Some(value) = lookup(&variable) {
                self.set(option, value, Origin::Environment(variable));
            }
        }
    }
}

/// oslo's iniparser drops one pair of matching quotes around a value.
fn unquote(value: &str) -> String {
    let value = value.trim();
    let bytes = value.as_bytes();
    if bytes.len() >= 2
        && bytes[0] == bytes[bytes.len() - 1]
        && (bytes[0] == b'"' || bytes[0] == b'\'')
    {
        return value[1..value.len() - 1].to_owned();
    }
    value.to_owned()
}

/// The files to read, in order.
fn discover(
    files: &ConfigFiles,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<PathBuf>, ConfigError> {
    if !files.files.is_empty() || !files.dirs.is_empty() {
        let mut found = Vec::new();
        for file in &files.files {
            if !file.is_file() {
                return Err(ConfigError::File {
                    path: file.clone(),
                    reason: "no such file (given with --config-file)".to_owned(),
                });
            }
            found.push(file.clone());
        }
        for dir in &files.dirs {
            if !dir.is_dir() {
                return Err(ConfigError::File {
                    path: dir.clone(),
                    reason: "no such directory (given with --config-dir)".to_owned(),
                });
            }
            found.extend(conf_files_in(dir));
        }
        return Ok(found);
    }
    if let Some(dir) = lookup("OS_PLACEMENT_CONFIG_DIR").filter(|dir| !dir.is_empty()) {
        let file = Path::new(&dir).join("placement.conf");
        return Ok(if file.is_file() {
            vec![file]
        } else {
            Vec::new()
        });
    }
    let search = search_path(lookup);
    let mut found = Vec::new();
    if let Some(file) = search
        .iter()
        .map(|dir| dir.join("placement.conf"))
        .find(|file| file.is_file())
    {
        found.push(file);
    }
    if let Some(dir) = search
        .iter()
        .map(|dir| dir.join("placement.conf.d"))
        .find(|dir| dir.is_dir())
    {
        found.extend(conf_files_in(&dir));
    }
    Ok(found)
}

/// oslo.config's default search path for the project `placement`.
fn search_path(lookup: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(home) = lookup("HOME").filter(|home| !home.is_empty()) {
        dirs.push(Path::new(&home).join(".placement"));
        dirs.push(PathBuf::from(home));
    }
    dirs.push(PathBuf::from("/etc/placement"));
    dirs.push(PathBuf::from("/etc"));
    dirs
}

/// The `*.conf` files of a directory, in name order, as `--config-dir`.
fn conf_files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "conf") && path.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &str)]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("placement-conf-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        for (name, text) in files {
            std::fs::write(dir.join(name), text).expect("write");
        }
        dir
    }

    fn value(settings: &Settings, section: &str, name: &str) -> Option<String> {
        let option = options::find(section, name).expect("known option");
        settings.get(option).map(|setting| setting.value.clone())
    }

    #[test]
    fn environment_beats_files_and_later_files_beat_earlier() {
        let dir = dir_with(&[
            (
                "a.conf",
                "[api]\nauth_strategy = noauth2\n[server]\nport = 1\n",
            ),
            ("b.conf", "[server]\nport = \"2\"\nbogus = 3\n"),
        ]);
        let files = ConfigFiles {
            files: vec![dir.join("a.conf"), dir.join("b.conf")],
            dirs: Vec::new(),
        };
        let settings = Settings::load(&files, &|name| {
            (name == "OS_API__AUTH_STRATEGY").then(|| "keystone".to_owned())
        })
        .expect("loads");
        assert_eq!(value(&settings, "server", "port").as_deref(), Some("2"));
        assert_eq!(
            value(&settings, "api", "auth_strategy").as_deref(),
            Some("keystone")
        );
        assert!(
            settings
                .warnings
                .iter()
                .any(|w| w.contains("[server] bogus"))
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn legacy_variables_are_read_and_os_names_win_over_them() {
        let settings = Settings::load(&ConfigFiles::default(), &|name| match name {
            "PORT" => Some("9000".to_owned()),
            "RBAC" => Some("legacy".to_owned()),
            "DATABASE_URL" => Some("postgres://a".to_owned()),
            "OS_PLACEMENT_DATABASE__CONNECTION" => Some("postgres://b".to_owned()),
            "OS_PLACEMENT_CONFIG_DIR" => Some("/nonexistent".to_owned()),
            _ => None,
        })
        .expect("loads");
        assert_eq!(value(&settings, "server", "port").as_deref(), Some("9000"));
        assert_eq!(
            value(&settings, "oslo_policy", "enforce_new_defaults").as_deref(),
            Some("false")
        );
        assert_eq!(
            value(&settings, "placement_database", "connection").as_deref(),
            Some("postgres://b")
        );
    }

    #[test]
    fn deprecated_names_and_keys_before_a_section_are_read() {
        let dir = dir_with(&[(
            "placement.conf",
            "auth_strategy = noauth2\n[keystone_authtoken]\nauth_uri = http://ks/\n",
        )]);
        let settings = Settings::load(&ConfigFiles::default(), &|name| {
            (name == "OS_PLACEMENT_CONFIG_DIR").then(|| dir.display().to_string())
        })
        .expect("loads");
        assert_eq!(
            value(&settings, "api", "auth_strategy").as_deref(),
            Some("noauth2")
        );
        assert_eq!(
            value(&settings, "keystone_authtoken", "www_authenticate_uri").as_deref(),
            Some("http://ks/")
        );
        assert_eq!(settings.warnings.len(), 2);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_named_file_that_is_missing_stops_start_up() {
        let files = ConfigFiles {
            files: vec![PathBuf::from("/nonexistent/placement.conf")],
            dirs: Vec::new(),
        };
        let error = Settings::load(&files, &|_| None)
            .err()
            .map(|e| e.to_string());
        assert!(error.is_some_and(|text| text.contains("/nonexistent/placement.conf")));
    }
}
