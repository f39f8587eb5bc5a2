//! Table definitions in Kamailio's `htable` modparam syntax:
//! `"name=>size=8;autoexpire=300;initval=0;dbtable=htable;dbmode=1;updateexpire=1"`.
//!
//! The part before `=>` names the table; after it come `;`-separated `attr=value` pairs (a value
//! may be double-quoted; a trailing `;` is fine). Every attribute Kamailio knows is parsed;
//! `size`, `autoexpire`, `initval`, `dbtable`, `dbmode` and `updateexpire` take effect,
//! `dmqreplicate` and `reloadat` are accepted and ignored (no DMQ here), `coldelim`/`colnull`
//! only matter with `cols`, which is refused (custom column lists are not supported).

/// A parsed table definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableSpec {
    /// The table's name (`$sht(name=>key)`).
    pub name: String,
    /// `size`: log2 of the number of slots (Kamailio clamps: <= 1 gives 8 slots, > 31 gives
    /// 2^14).
    pub size: u32,
    /// `autoexpire`: seconds an item lives after its last update; 0 never expires.
    pub autoexpire: u64,
    /// `initval`: the integer a missing item reads as (and `sht_inc` starts from).
    pub initval: Option<i64>,
    /// `dbtable`: store table loaded at startup ("" none).
    pub dbtable: String,
    /// `dbmode`: 1 writes the table back to `dbtable`.
    pub dbmode: u32,
    /// `updateexpire`: 1 (default) restarts the expiry on every update.
    pub updateexpire: bool,
    /// `dmqreplicate` (parsed; DMQ replication is not available).
    pub dmqreplicate: u32,
    /// `reloadat` (parsed; not used).
    pub reloadat: u32,
}

/// A definition that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid htable definition `{spec}`: {reason}")]
pub struct SpecError {
    /// The definition as given.
    pub spec: String,
    /// What is wrong.
    pub reason: String,
}

impl TableSpec {
    /// The number of shards (Kamailio's slots): 2^size, clamped as Kamailio does.
    pub fn slots(&self) -> usize {
        match self.size {
            0 | 1 => 8,
            s if s > 31 => 1 << 14,
            // A shard is a hash map, not a list: more than 2^14 locks buys nothing.
            s => 1 << s.min(14),
        }
    }

    /// Parse one definition.
    pub fn parse(spec: &str) -> Result<TableSpec, SpecError> {
        let bad = |reason: String| SpecError {
            spec: spec.to_string(),
            reason,
        };
        let (name, attrs) = spec
            .split_once("=>")
            .ok_or_else(|| bad("expected `name=>attr=value;...`".into()))?;
        let name = name.trim();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        {
            return Err(bad(format!(
                "table name `{name}` must be letters, digits, `_`, `-` or `.`"
            )));
        }
        let mut t = TableSpec {
            name: name.to_string(),
            size: 4,
            autoexpire: 0,
            initval: None,
            dbtable: String::new(),
            dbmode: 0,
            updateexpire: true,
            dmqreplicate: 0,
            reloadat: 0,
        };
        for part in attrs.split(';') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (key, value) = match part.split_once('=') {
                Some((k, v)) => (k.trim(), v.trim()),
                None => (part, ""),
            };
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            let uint = |v: &str| {
                v.parse::<u32>().map_err(|_| {
                    bad(format!(
                        "attribute `{key}` needs a non-negative integer, not `{v}`"
                    ))
                })
            };
            match key {
                "size" => t.size = uint(value)?,
                "autoexpire" => t.autoexpire = uint(value)?.into(),
                "dbmode" => t.dbmode = uint(value)?,
                "updateexpire" => t.updateexpire = uint(value)? != 0,
                "dmqreplicate" => t.dmqreplicate = uint(value)?,
                "reloadat" => t.reloadat = uint(value)?,
                "initval" => {
                    t.initval = Some(value.parse::<i64>().map_err(|_| {
                        bad(format!(
                            "attribute `initval` needs an integer, not `{value}`"
                        ))
                    })?)
                }
                "dbtable" => t.dbtable = value.to_string(),
                "coldelim" | "colnull" => {
                    if value.chars().count() > 1 {
                        return Err(bad(format!("attribute `{key}` takes one character")));
                    }
                }
                "cols" => {
                    return Err(bad(
                        "attribute `cols` (custom column lists) is not supported".into(),
                    ))
                }
                other => {
                    return Err(bad(format!(
                        "unknown attribute `{other}` (known: size, autoexpire, initval, dbtable, \
                         dbmode, updateexpire, dmqreplicate, reloadat, coldelim, colnull, cols)"
                    )))
                }
            }
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kamailio_definitions() {
        let t = TableSpec::parse("ipban=>size=8;autoexpire=300;").unwrap();
        assert_eq!(t.name, "ipban");
        assert_eq!((t.size, t.autoexpire, t.slots()), (8, 300, 256));
        let t =
            TableSpec::parse("a => size=2; initval=-1; dbtable=\"h\"; dbmode=1; updateexpire=0")
                .unwrap();
        assert_eq!(t.initval, Some(-1));
        assert_eq!(t.dbtable, "h");
        assert!(!t.updateexpire);
        assert_eq!(TableSpec::parse("b=>").unwrap().slots(), 16);
        assert_eq!(TableSpec::parse("b=>size=0").unwrap().slots(), 8);
        assert_eq!(TableSpec::parse("b=>size=40").unwrap().slots(), 1 << 14);
        for (bad, what) in [
            ("nosep", "expected"),
            ("=>size=1", "table name"),
            ("a=>size=x", "`size`"),
            ("a=>colour=1", "unknown attribute `colour`"),
            ("a=>initval=z", "`initval`"),
            ("a=>cols=\"k,v\"", "not supported"),
        ] {
            let e = TableSpec::parse(bad).unwrap_err().to_string();
            assert!(e.contains(what), "{bad}: {e}");
        }
    }
}
