//! Operator commands that edit the store directly (`kamctl`-style), usable while sipd runs.

pub mod address;
pub mod user;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use modules::store::{self, StoreRef};

use crate::config::{Config, RunArgs};

/// Where an operator command finds the store: the one a configuration file uses, or a URL.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Use the store of this configuration file (the module's `db_url` modparam, else `[db] url`).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Use this store URL (`sqlite:///path/sipd.db`).
    #[arg(long, global = true, conflicts_with = "config")]
    pub db: Option<String>,
}

impl StoreArgs {
    /// Open the store that `module` uses, with the module's modparams (empty with `--db`).
    pub fn open(&self, module: &str) -> Result<(StoreRef, toml::Table)> {
        match (&self.config, &self.db) {
            (Some(cfg), _) => {
                let config = Config::load(&RunArgs {
                    config: Some(cfg.clone()),
                    ..RunArgs::default()
                })?;
                let params = config.modparams.get(module).cloned().unwrap_or_default();
                let url = params
                    .get("db_url")
                    .and_then(|v| v.as_str())
                    .unwrap_or(&config.db_url)
                    .to_string();
                let st = store::open(&url, &config.base_dir)
                    .with_context(|| format!("opening the store of {}", cfg.display()))?;
                Ok((st, params))
            }
            (None, Some(url)) => Ok((
                store::open(url, Path::new(".")).context("opening the store")?,
                toml::Table::new(),
            )),
            (None, None) => bail!("give --config FILE or --db URL"),
        }
    }
}
