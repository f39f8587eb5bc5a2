//! Module parameters with Kamailio's names (`[modparam.<module>]` in the TOML,
//! `modparam("<module>", "<name>", value)` in a Kamailio cfg), as the stateful modules read them
//! at setup.
//!
//! A value is an integer, a string or a list (a parameter Kamailio lets you repeat, such as
//! htable's `htable`). Readers convert on access and name the module and parameter in every error.

use std::collections::BTreeMap;

/// One parameter value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParamValue {
    /// An integer (TOML booleans become 1 and 0, as Kamailio's `yes`/`no`).
    Int(i64),
    /// A string.
    Str(String),
    /// A repeated parameter.
    List(Vec<ParamValue>),
}

/// A parameter that could not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("modparam {module}.{param}: {message}")]
pub struct ModparamError {
    /// The module.
    pub module: String,
    /// The parameter.
    pub param: String,
    /// What is wrong.
    pub message: String,
}

/// The parameters of one module.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModParams {
    module: String,
    values: BTreeMap<String, ParamValue>,
}

impl ModParams {
    /// No parameters for `module`.
    pub fn new(module: &str) -> ModParams {
        ModParams {
            module: module.to_string(),
            values: BTreeMap::new(),
        }
    }

    /// The module's name.
    pub fn module(&self) -> &str {
        &self.module
    }

    /// Set `name` (builder style, for tests and defaults).
    pub fn with(mut self, name: &str, value: ParamValue) -> ModParams {
        self.values.insert(name.to_string(), value);
        self
    }

    /// Set `name`.
    pub fn set(&mut self, name: &str, value: ParamValue) {
        self.values.insert(name.to_string(), value);
    }

    /// An error about `param`.
    pub fn error(&self, param: &str, message: impl Into<String>) -> ModparamError {
        ModparamError {
            module: self.module.clone(),
            param: param.to_string(),
            message: message.into(),
        }
    }

    /// Refuse any parameter not in `known`.
    pub fn check_known(&self, known: &[&str]) -> Result<(), ModparamError> {
        match self.values.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(self.error(
                k,
                format!("unknown parameter (known: {})", known.join(", ")),
            )),
            None => Ok(()),
        }
    }

    /// Integer `name`, or `default` when absent. Strings holding an integer, `yes`/`no`,
    /// `on`/`off` and `true`/`false` are accepted, as Kamailio does.
    pub fn int(&self, name: &str, default: i64) -> Result<i64, ModparamError> {
        match self.values.get(name) {
            None => Ok(default),
            Some(ParamValue::Int(i)) => Ok(*i),
            Some(ParamValue::Str(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "yes" | "on" | "true" => Ok(1),
                "no" | "off" | "false" => Ok(0),
                t => t
                    .parse()
                    .map_err(|_| self.error(name, format!("`{s}` is not an integer"))),
            },
            Some(ParamValue::List(_)) => Err(self.error(name, "expected an integer, not a list")),
        }
    }

    /// String `name`, if present (integers are written out).
    pub fn str(&self, name: &str) -> Result<Option<String>, ModparamError> {
        match self.values.get(name) {
            None => Ok(None),
            Some(ParamValue::Str(s)) => Ok(Some(s.clone())),
            Some(ParamValue::Int(i)) => Ok(Some(i.to_string())),
            Some(ParamValue::List(_)) => Err(self.error(name, "expected a string, not a list")),
        }
    }

    /// Every value of a repeatable string parameter (one string or a list of them).
    pub fn strs(&self, name: &str) -> Result<Vec<String>, ModparamError> {
        match self.values.get(name) {
            None => Ok(Vec::new()),
            Some(ParamValue::List(items)) => items
                .iter()
                .map(|v| match v {
                    ParamValue::Str(s) => Ok(s.clone()),
                    ParamValue::Int(i) => Ok(i.to_string()),
                    ParamValue::List(_) => Err(self.error(name, "nested lists are not allowed")),
                })
                .collect(),
            Some(_) => Ok(self.str(name)?.into_iter().collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kamailio_style_values() {
        let p = ModParams::new("auth_db")
            .with("calculate_ha1", ParamValue::Str("yes".into()))
            .with("n", ParamValue::Int(3))
            .with(
                "htable",
                ParamValue::List(vec![ParamValue::Str("a=>size=8".into())]),
            );
        assert_eq!(p.int("calculate_ha1", 0), Ok(1));
        assert_eq!(p.int("n", 0), Ok(3));
        assert_eq!(p.int("absent", 7), Ok(7));
        assert_eq!(p.strs("htable").unwrap(), vec!["a=>size=8".to_string()]);
        assert_eq!(p.str("n").unwrap().as_deref(), Some("3"));
        let e = p.check_known(&["n"]).unwrap_err();
        assert_eq!(e.module, "auth_db");
        assert!(e
            .to_string()
            .starts_with("modparam auth_db.calculate_ha1: unknown parameter"));
        assert!(ModParams::new("x")
            .with("n", ParamValue::Str("z".into()))
            .int("n", 0)
            .is_err());
    }
}
