//! `sipd api list`: the KSR API as Kamailio's `app_lua.api_list` shows it, or as text.

use kemi_runtime::ExportTable;

/// Output format of `sipd api list`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ApiFormat {
    /// `{"msize":N,"methods":[{"func":{...}}]}`.
    Json,
    /// One line per export: `ret KSR.module.name(params)`.
    Text,
}

/// Render the API listing of `table`.
pub fn render(table: &ExportTable, format: ApiFormat) -> String {
    match format {
        ApiFormat::Json => {
            let mut s = serde_json::to_string_pretty(&table.api_list()).unwrap_or_default();
            s.push('\n');
            s
        }
        ApiFormat::Text => {
            let mut out = String::new();
            for (_, e) in table.iter() {
                let params: Vec<&str> = e.params.iter().map(|p| p.as_str()).collect();
                let path = if e.module.is_empty() {
                    format!("KSR.{}", e.name)
                } else {
                    format!("KSR.{}.{}", e.module, e.name)
                };
                out.push_str(&format!(
                    "{} {}({})\n",
                    e.ret.as_str(),
                    path,
                    params.join(", ")
                ));
            }
            out
        }
    }
}
