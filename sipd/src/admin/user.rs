//! `sipd user add USER@DOMAIN PASSWORD`, `sipd user passwd USER@DOMAIN PASSWORD`,
//! `sipd user rm USER@DOMAIN` and `sipd user list`: the auth_db module's `subscriber` table, as
//! `kamctl add/passwd/rm` edit it.
//!
//! A subscriber is stored as kamctl stores one: the plain password, `ha1` =
//! MD5(user:domain:password) and `ha1b` = MD5(user@domain:domain:password), the domain being
//! the realm. The store is the one sipd uses (`--config FILE`: the auth_db `db_url` modparam,
//! else its `[db] url`, else `sipd.db` next to the file), or `--db URL`. SQLite runs in WAL
//! mode, so this works while sipd runs; a running sipd sees the change within auth_db's
//! `cache_ttl` (5 s).
//!
//! Output (stdout): `added USER@DOMAIN`, `changed USER@DOMAIN`, `removed USER@DOMAIN`, and for
//! `list` one `USER@DOMAIN` per line, sorted by domain then user. Errors go to stderr with
//! exit status 1.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use modules::auth::digest::{ha1, Algorithm};
use modules::store::{self, StoreRef, Subscriber};

/// The subscriber table (Kamailio's default, which auth_db scripts name).
pub const TABLE: &str = "subscriber";

/// `sipd user ...`.
#[derive(Debug, Args)]
pub struct UserArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: UserCommand,
    /// Where the store is.
    #[command(flatten)]
    pub store: super::StoreArgs,
}

/// The user subcommands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a subscriber (fails if it exists).
    Add {
        /// `user@domain` (a leading `sip:` is accepted).
        aor: String,
        /// The password.
        password: String,
    },
    /// Change the password of a subscriber.
    Passwd {
        /// `user@domain`.
        aor: String,
        /// The new password.
        password: String,
    },
    /// Remove a subscriber.
    Rm {
        /// `user@domain`.
        aor: String,
    },
    /// List every subscriber, one `user@domain` per line.
    List,
}

/// Split and check `user@domain`.
pub fn parse_aor(aor: &str) -> Result<(String, String)> {
    let bare = aor
        .strip_prefix("sip:")
        .or_else(|| aor.strip_prefix("sips:"))
        .unwrap_or(aor);
    let Some((user, domain)) = bare.rsplit_once('@') else {
        bail!("bad AoR `{aor}`: expected USER@DOMAIN");
    };
    let user_ok = !user.is_empty()
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/%".contains(&b));
    if !user_ok {
        bail!("bad AoR `{aor}`: the user part must be non-empty SIP user characters");
    }
    let domain_ok = !domain.is_empty()
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    if !domain_ok {
        bail!("bad AoR `{aor}`: the domain must be a host name or an IP address");
    }
    Ok((user.to_string(), domain.to_ascii_lowercase()))
}

/// The row kamctl would store for `user`@`domain` with `password`.
pub fn subscriber(user: &str, domain: &str, password: &str) -> Subscriber {
    let userb = format!("{user}@{domain}");
    Subscriber {
        username: user.to_string(),
        domain: domain.to_string(),
        password: password.to_string(),
        ha1: ha1(Algorithm::Md5, user, domain, password),
        ha1b: ha1(Algorithm::Md5, &userb, domain, password),
    }
}

/// The store the arguments name: auth_db's.
fn open(args: &UserArgs) -> Result<StoreRef> {
    Ok(args.store.open("auth_db")?.0)
}

/// Carry out `cmd` on `st`, writing the result lines to `out`.
pub fn execute(st: &dyn store::Store, cmd: &UserCommand, out: &mut dyn Write) -> Result<()> {
    match cmd {
        UserCommand::Add { aor, password } | UserCommand::Passwd { aor, password } => {
            let (user, domain) = parse_aor(aor)?;
            if password.is_empty() {
                bail!("the password must not be empty");
            }
            let exists = st.subscriber(TABLE, &user, &domain)?.is_some();
            let adding = matches!(cmd, UserCommand::Add { .. });
            if adding && exists {
                bail!("{user}@{domain} already exists (use `sipd user passwd` to change it)");
            }
            if !adding && !exists {
                bail!("no such user {user}@{domain}");
            }
            st.put_subscriber(TABLE, &subscriber(&user, &domain, password))?;
            let verb = if adding { "added" } else { "changed" };
            writeln!(out, "{verb} {user}@{domain}")?;
        }
        UserCommand::Rm { aor } => {
            let (user, domain) = parse_aor(aor)?;
            if !st.delete_subscriber(TABLE, &user, &domain)? {
                bail!("no such user {user}@{domain}");
            }
            writeln!(out, "removed {user}@{domain}")?;
        }
        UserCommand::List => {
            for s in st.subscribers(TABLE)? {
                writeln!(out, "{}@{}", s.username, s.domain)?;
            }
        }
    }
    Ok(())
}

/// Run `sipd user ...`.
pub fn run(args: &UserArgs) -> Result<ExitCode> {
    // Validate before touching the store.
    match &args.command {
        UserCommand::Add { aor, .. }
        | UserCommand::Passwd { aor, .. }
        | UserCommand::Rm { aor } => {
            parse_aor(aor)?;
        }
        UserCommand::List => {}
    }
    let st = open(args)?;
    let stdout = std::io::stdout();
    execute(&*st, &args.command, &mut stdout.lock())?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_on(st: &dyn store::Store, cmd: UserCommand) -> Result<String> {
        let mut out = Vec::new();
        execute(st, &cmd, &mut out)?;
        Ok(String::from_utf8(out).unwrap_or_default())
    }

    #[test]
    fn aors() {
        assert_eq!(
            parse_aor("sip:alice@Example.COM").unwrap(),
            ("alice".into(), "example.com".into())
        );
        assert_eq!(
            parse_aor("bob@127.0.0.1").unwrap(),
            ("bob".into(), "127.0.0.1".into())
        );
        for bad in ["alice", "@d", "a@", "a b@d", "a@d/x", ""] {
            assert!(parse_aor(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn kamctl_hashes() {
        let s = subscriber("alice", "example.com", "secret");
        assert_eq!(s.ha1, ha1(Algorithm::Md5, "alice", "example.com", "secret"));
        assert_eq!(
            s.ha1b,
            ha1(Algorithm::Md5, "alice@example.com", "example.com", "secret")
        );
        assert_eq!(s.ha1.len(), 32);
    }

    /// The real commands on a SQLite file, then read by a second connection (as sipd would).
    #[test]
    fn add_list_passwd_rm_on_a_file() {
        let dir = std::env::temp_dir().join(format!("sipd-user-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sipd.db");
        let _ = std::fs::remove_file(&path);
        let url = format!("sqlite://{}", path.display());
        let st = store::open(&url, &dir).unwrap();
        let add = |a: &str, p: &str| UserCommand::Add {
            aor: a.into(),
            password: p.into(),
        };
        assert_eq!(
            run_on(&*st, add("bob@b.example", "pw1")).unwrap(),
            "added bob@b.example\n"
        );
        assert_eq!(
            run_on(&*st, add("alice@a.example", "pw2")).unwrap(),
            "added alice@a.example\n"
        );
        let e = run_on(&*st, add("bob@b.example", "x")).unwrap_err();
        assert!(e.to_string().contains("already exists"), "{e}");
        assert!(run_on(&*st, add("nobody", "x")).is_err());
        assert!(run_on(&*st, add("carol@c", "")).is_err());
        assert_eq!(
            run_on(&*st, UserCommand::List).unwrap(),
            "alice@a.example\nbob@b.example\n"
        );
        // A second connection sees the rows (sipd running next to the command).
        let other = store::open(&url, &dir).unwrap();
        let row = other
            .subscriber(TABLE, "bob", "b.example")
            .unwrap()
            .unwrap();
        assert_eq!(row, subscriber("bob", "b.example", "pw1"));
        assert_eq!(
            run_on(
                &*st,
                UserCommand::Passwd {
                    aor: "bob@b.example".into(),
                    password: "pw3".into()
                }
            )
            .unwrap(),
            "changed bob@b.example\n"
        );
        assert_eq!(
            other
                .subscriber(TABLE, "bob", "b.example")
                .unwrap()
                .unwrap()
                .password,
            "pw3"
        );
        let rm = |a: &str| UserCommand::Rm { aor: a.into() };
        assert_eq!(
            run_on(&*st, rm("bob@b.example")).unwrap(),
            "removed bob@b.example\n"
        );
        let e = run_on(&*st, rm("bob@b.example")).unwrap_err();
        assert!(e.to_string().contains("no such user bob@b.example"), "{e}");
        assert_eq!(
            run_on(&*st, UserCommand::List).unwrap(),
            "alice@a.example\n"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The command line as an operator types it, through `cli::run`.
    #[test]
    fn command_line() {
        use clap::Parser;
        let dir = std::env::temp_dir().join(format!("sipd-user-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = format!("sqlite://{}", dir.join("sipd.db").display());
        let run = |args: &[&str]| {
            let cli = crate::cli::Cli::try_parse_from(args).map_err(|e| e.to_string())?;
            crate::cli::run(cli).map_err(|e| e.to_string())
        };
        assert!(run(&["sipd", "user", "add", "dave@d.example", "pw", "--db", &db]).is_ok());
        let e = run(&["sipd", "user", "--db", &db, "rm", "erin@d.example"]).unwrap_err();
        assert!(e.contains("no such user erin@d.example"), "{e}");
        let e = run(&["sipd", "user", "--db", &db, "rm", "not-an-aor"]).unwrap_err();
        assert!(e.contains("bad AoR"), "{e}");
        let e = run(&["sipd", "user", "list"]).unwrap_err();
        assert!(e.contains("--config FILE or --db URL"), "{e}");
        assert!(run(&["sipd", "user", "rm", "dave@d.example", "--db", &db]).is_ok());
        let st = store::open(&db, &dir).unwrap();
        assert!(st.subscribers(TABLE).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
