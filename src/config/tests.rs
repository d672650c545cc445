use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::endpoint::*;
use super::pgpass::*;
use super::raw::*;
use super::redact::*;
use super::*;
use crate::sql::QualifiedName;

/// (case, file text, environment, expected source host or error fragments)
type EnvCase<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, Result<&'a str, Vec<&'a str>>);
/// (url, environment, expected password)
type PasswordCase<'a> = (&'a str, Vec<(&'a str, &'a str)>, Option<&'a str>);

const SECRET: &str = "s3cr3t-Pa55";

fn env_from(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |name| vars.get(name).cloned()
}

fn no_env(_: &str) -> Option<String> {
    None
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("pgvshift-config-test-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn file(&self, name: &str, contents: &str, mode: u32) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        #[cfg(not(unix))]
        let _ = mode;
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config_text(source_url: &str, target_url: &str, extra: &str) -> String {
    format!(
        r#"
[source]
url = "{source_url}"
[target]
url = "{target_url}"
[replication]
slot = "pgvshift"
publication = "pgvshift"
{extra}
[[tables]]
source = "public.items"
"#
    )
}

fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    Config::parse_str(text, Path::new("/etc/pgvshift.toml"), env)
}

fn parse_err(text: &str) -> ConfigError {
    match parse(text, &no_env) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e,
    }
}

#[test]
fn profiles_renames_excludes_and_index_settings() {
    let text = config_text(
        "postgresql://u@s/db",
        "postgresql://u@t/db",
        "[indexes]\nmaintenance_work_mem = \"2GB\"\nmax_parallel_maintenance_workers = 3",
    ) + "profile = \"alloydb\"\nindex = \"scann\"\ncolumn_profiles = { small = \"halfvec\" }\ncolumns = { embedding = \"vec\" }\nexclude = [\"secret\"]\nindex_ddl_only = true\n";
    let c = parse(&text, &no_env).unwrap();
    let t = &c.tables[0];
    assert_eq!(t.profile, Profile::Alloydb);
    assert!(t.alloydb_scann && t.index_ddl_only && !t.densify_sparse);
    assert_eq!(t.profile_for("small"), Profile::Halfvec);
    assert_eq!(t.profile_for("embedding"), Profile::Alloydb);
    assert_eq!(t.target_column("embedding"), Some("vec"));
    assert_eq!(t.target_column("secret"), None);
    assert_eq!(t.target_column("other"), Some("other"));
    assert_eq!(c.indexes.maintenance_work_mem.as_deref(), Some("2GB"));
    assert_eq!(c.indexes.max_parallel_maintenance_workers, Some(3));

    let cases = [
        (
            "profile = \"pgvectors\"\n",
            "unknown profile \"pgvectors\": choose one of pgvector, halfvec, lantern, pgvecto_rs, vectorchord, alloydb",
        ),
        ("index = \"scann\"\n", "index = \"scann\" needs profile = \"alloydb\""),
        ("columns = { a = \"x\", b = \"x\" }\n", "are both renamed to x"),
        (
            "columns = { a = \"x\" }\nexclude = [\"a\"]\n",
            "both excluded and renamed",
        ),
        ("column_profiles = { a = \"nope\" }\n", "unknown profile \"nope\""),
    ];
    for (extra, want) in cases {
        let text = config_text("postgresql://u@s/db", "postgresql://u@t/db", "") + extra;
        let err = parse_err(&text).to_string();
        assert!(err.contains(want), "{extra}: {err}");
        assert!(err.contains("/etc/pgvshift.toml"), "{err}");
    }
    let text = config_text(
        "postgresql://u@s/db",
        "postgresql://u@t/db",
        "[indexes]\nmaintenance_work_mem = \"lots\"",
    );
    assert!(parse_err(&text).to_string().contains("not a memory size"));
}

/// A self-signed certificate (parsed only, never used for a connection).
const TEST_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBkDCCATegAwIBAgIUEhsAIwgFZpOD9q6IbXcfWUvVhyMwCgYIKoZIzj0EAwIw
HTEbMBkGA1UEAwwScGd2c2hpZnQtdW5pdC10ZXN0MCAXDTI2MTEyMjA3MjY0NFoY
DzIxMjYxMDI5MDcyNjQ0WjAdMRswGQYDVQQDDBJwZ3ZzaGlmdC11bml0LXRlc3Qw
WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQe2nlSiAbTVIz6GzG3fUmJ2dR3ImH6
9t8DrBoD3+MSGKEUS1WJjyMU4np28JSxQ8aCXxuPUky7ByiDDOz/JMfNo1MwUTAd
BgNVHQ4EFgQUrfK9H50lww2pANR1hxNpoykvLtMwHwYDVR0jBBgwFoAUrfK9H50l
ww2pANR1hxNpoykvLtMwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNHADBE
AiA9TlRPxMmE2ZBGPSEduPR8gIgWf0ysa5DV3AA290WNhAIgRtGDLROED9EQsZVU
Qy9zdvPEy3AQ58gvkytQaYgCaLY=
-----END CERTIFICATE-----
";

#[test]
fn tls_parameters() {
    use tokio_postgres::config::SslMode as PgSslMode;
    let dir = TempDir::new("tls");
    let cert = dir.file("root.crt", TEST_CERT, 0o644);
    let two = dir.file("two.crt", &format!("{TEST_CERT}{TEST_CERT}"), 0o644);
    let cert = cert.to_str().unwrap();
    let resolve = |url: &str| resolve_endpoint("source", url, Path::new("c.toml"), "source.url".into(), &no_env);
    // (query, configured mode, chain verified, host name verified, tokio-postgres mode)
    let cases = [
        ("", SslMode::Prefer, false, false, PgSslMode::Prefer),
        ("?sslmode=disable", SslMode::Disable, false, false, PgSslMode::Disable),
        ("?sslmode=prefer", SslMode::Prefer, false, false, PgSslMode::Prefer),
        ("?sslmode=require", SslMode::Require, false, false, PgSslMode::Require),
        // libpq: require with a root certificate verifies the chain like verify-ca
        (
            &*format!("?sslmode=require&sslrootcert={cert}"),
            SslMode::Require,
            true,
            false,
            PgSslMode::Require,
        ),
        (
            &*format!("?sslmode=verify-ca&sslrootcert={cert}"),
            SslMode::VerifyCa,
            true,
            false,
            PgSslMode::Require,
        ),
        (
            &*format!("?sslrootcert={cert}&sslmode=verify-full"),
            SslMode::VerifyFull,
            true,
            true,
            PgSslMode::Require,
        ),
        // libpq 16: sslrootcert=system makes verify-full the default
        (
            "?sslrootcert=system",
            SslMode::VerifyFull,
            true,
            true,
            PgSslMode::Require,
        ),
        (
            "?sslmode=verify-full&sslrootcert=system",
            SslMode::VerifyFull,
            true,
            true,
            PgSslMode::Require,
        ),
    ];
    for (query, mode, chain, name, pg_mode) in cases {
        let url = format!("postgresql://u@db.example.com/d{query}");
        let ep = resolve(&url).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(ep.tls.mode, mode, "{url}");
        assert_eq!(ep.tls.verifies_chain(), chain, "{url}");
        assert_eq!(ep.tls.verifies_host_name(), name, "{url}");
        assert_eq!(ep.pg.get_ssl_mode(), pg_mode, "{url}");
        assert_eq!(ep.tls.requires_tls(), pg_mode == PgSslMode::Require, "{url}");
    }
    let ep = resolve(&format!(
        "postgresql://u@h/d?sslmode=verify-full&sslrootcert={}",
        two.display()
    ))
    .unwrap();
    match &ep.tls.root_cert {
        Some(RootCert::File { path, roots }) => {
            assert_eq!(path, &two);
            assert_eq!(roots.len(), 2);
        }
        other => panic!("expected the file, got {other:?}"),
    }
    assert_eq!(
        ep.tls.describe(),
        format!("sslmode=verify-full, sslrootcert={}", two.display())
    );
    // prefer over a unix socket: plain (the server never offers TLS there)
    let ep = resolve("postgresql://u@%2Ftmp/d?sslmode=prefer").unwrap();
    assert_eq!(ep.pg.get_ssl_mode(), PgSslMode::Disable);

    let missing = dir.0.join("nope.crt");
    let not_pem = dir.file(
        "key.pem",
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
        0o644,
    );
    let garbage = dir.file(
        "garbage.crt",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        0o644,
    );
    // (query, fragments of the error)
    let errors: Vec<(String, Vec<String>)> = vec![
        (
            "?sslmode=verify_full".into(),
            vec!["sslmode=\"verify_full\" is invalid".into(), "verify-full".into()],
        ),
        (
            "?sslmode=verify-full".into(),
            vec![
                "sslmode=verify-full needs".into(),
                "sslrootcert=".into(),
                "sslrootcert=system".into(),
            ],
        ),
        ("?sslmode=verify-ca".into(), vec!["sslmode=verify-ca needs".into()]),
        (
            format!("?sslmode=verify-full&sslrootcert={}", missing.display()),
            vec![
                format!("cannot read sslrootcert file {}", missing.display()),
                "No such file".into(),
            ],
        ),
        (
            format!("?sslmode=verify-full&sslrootcert={}", dir.0.display()),
            vec![format!("cannot read sslrootcert file {}", dir.0.display())],
        ),
        (
            format!("?sslmode=require&sslrootcert={}", not_pem.display()),
            vec![format!("sslrootcert file {} holds no certificate", not_pem.display())],
        ),
        (
            format!("?sslmode=require&sslrootcert={}", garbage.display()),
            vec![format!("sslrootcert file {}", garbage.display())],
        ),
        (
            "?sslmode=verify-full&sslrootcert=".into(),
            vec!["sslrootcert is empty".into()],
        ),
        (
            "?sslmode=require&sslrootcert=system".into(),
            vec!["weak sslmode=require".into(), "use sslmode=verify-full".into()],
        ),
        (
            "?sslmode=verify-ca&sslrootcert=system".into(),
            vec!["weak sslmode=verify-ca".into()],
        ),
        (
            format!("?sslrootcert={cert}"),
            vec!["has no effect with sslmode=prefer".into(), "sslmode=verify-full".into()],
        ),
        (
            format!("?sslmode=disable&sslrootcert={cert}"),
            vec!["has no effect with sslmode=disable".into()],
        ),
        ("?sslmode=bad&password=pw".into(), vec!["is invalid".into()]),
    ];
    for (query, fragments) in errors {
        let url = format!("postgresql://u@h/d{query}");
        let msg = match resolve(&url) {
            Ok(ep) => panic!("{url}: expected an error, got {ep:?}"),
            Err(e) => e.to_string(),
        };
        assert!(msg.starts_with("source.url: invalid PostgreSQL URL"), "{msg}");
        for f in fragments {
            assert!(msg.contains(&f), "{url}: {msg:?} lacks {f:?}");
        }
        assert!(!msg.contains("pw&") && !msg.contains("password=pw"), "{msg}");
    }
    let e = resolve("postgresql://u@%2Fvar%2Frun%2Fpostgresql/d?sslmode=require").unwrap_err();
    assert!(e.to_string().contains("does not offer over a unix socket"), "{e}");
    assert!(e.to_string().contains("connect over TCP"), "{e}");
}

#[test]
fn example_file_parses() {
    let config = Config::parse_str(
        include_str!("../../config.example.toml"),
        Path::new("config.example.toml"),
        &no_env,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(!config.tables.is_empty());
    assert_eq!(config.source.password, None);
    assert_eq!(config.target.password, None);
    // Every [cutover] key is in the example (with its default value).
    assert_eq!(config.cutover, CutoverSettings::default());
}

#[test]
fn cutover_section() {
    let base = |extra: &str| {
        config_text(
            "postgresql://u@h/s",
            "postgresql://u@h/t",
            &format!("[cutover]\n{extra}"),
        )
    };
    let c = parse(&base("max_lag = \"1MB\"\nwait_timeout_secs = 9\nlock_timeout_secs = 2\nmax_write_pause_secs = 7\nfinal_verify = \"full\"\nsample_percent = 2.5\nhold_fence_secs = 3"), &no_env)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.cutover,
        CutoverSettings {
            max_lag: 1 << 20,
            wait_timeout: Duration::from_secs(9),
            lock_timeout: Duration::from_secs(2),
            max_write_pause: Duration::from_secs(7),
            final_verify: FinalVerify::Full,
            sample_percent: 2.5,
            hold_fence: Duration::from_secs(3),
        }
    );
    let defaults = parse(&config_text("postgresql://u@h/s", "postgresql://u@h/t", ""), &no_env).unwrap();
    assert_eq!(defaults.cutover, CutoverSettings::default());
    for (bad, want) in [
        ("max_lag = \"lots\"", "cutover.max_lag"),
        ("final_verify = \"some\"", "cutover.final_verify"),
        ("sample_percent = 0.0", "cutover.sample_percent"),
        ("lock_timeout_secs = 0", "cutover.lock_timeout_secs"),
        ("fence = \"trigger\"", "unknown field"),
    ] {
        let err = parse(&base(bad), &no_env).unwrap_err().to_string();
        assert!(err.contains(want), "{bad}: {err}");
    }
}

#[test]
fn metrics_listen_address() {
    let text = config_text("postgresql://u@h/s", "postgresql://u@h/t", "")
        .replace("[[tables]]", "[metrics]\nlisten = \"127.0.0.1:9187\"\n[[tables]]");
    let c = parse(&text, &no_env).unwrap();
    assert_eq!(c.metrics_listen, Some("127.0.0.1:9187".parse().unwrap()));
    let bad = parse_err(&text.replace("127.0.0.1:9187", "localhost")).to_string();
    assert!(bad.contains("metrics.listen") && bad.contains("IP:PORT"), "{bad}");
    assert_eq!(
        parse(&config_text("postgresql://u@h/s", "postgresql://u@h/t", ""), &no_env)
            .unwrap()
            .metrics_listen,
        None
    );
}

#[test]
fn langchain_example_file_parses() {
    let config = Config::parse_str(
        include_str!("../../config.langchain.example.toml"),
        Path::new("config.langchain.example.toml"),
        &no_env,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(config.tables.is_empty());
    let lc = config.langchain.clone().expect("[langchain]");
    assert_eq!(lc.table_names["FAQ & Help"], "faq");
    assert_eq!(lc.metadata_columns.len(), 2);
    assert_eq!(
        config.published_tables(),
        [
            QualifiedName::new("public", "langchain_pg_collection"),
            QualifiedName::new("public", "langchain_pg_embedding")
        ]
    );
    // [[tables]] and [langchain] are exclusive.
    let text = format!(
        "{}\n[[tables]]\nsource = \"items\"\n",
        include_str!("../../config.langchain.example.toml")
    );
    let e = parse_err(&text);
    assert!(e.to_string().contains("cannot be combined with [langchain]"), "{e}");
}

#[test]
fn wrong_types_name_their_key() {
    let text = "[replication]\nslot = \"s\"\nbatch_max_changes = \"ten\"\n[[tables]]\nsource = 5\n";
    assert_eq!(
        key_of_value_at(text, text.find("\"ten").unwrap()).as_deref(),
        Some("replication.batch_max_changes")
    );
    assert_eq!(
        key_of_value_at(text, text.find('5').unwrap()).as_deref(),
        Some("[[tables]] source")
    );
    assert_eq!(key_of_value_at(text, 0), None);
    let err = parse_err(&config_text(
        "postgresql://u@h/s",
        "postgresql://u@h/t",
        "batch_max_changes = \"ten\"",
    ))
    .to_string();
    assert!(err.contains("replication.batch_max_changes: invalid type"), "{err}");
}

#[test]
fn retained_wal_sizes_and_replica_identity() {
    let c = parse(
        &config_text(
            "postgresql://u@h/s",
            "postgresql://u@h/t",
            "warn_retained_wal = \"512MB\"\nmax_retained_wal = \"2GB\"",
        )
        .replace(
            "source = \"public.items\"",
            "source = \"public.items\"\nreplica_identity = \"full\"",
        ),
        &no_env,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.replication.warn_retained_wal, Some(512 << 20));
    assert_eq!(c.replication.max_retained_wal, Some(2 << 30));
    assert!(c.tables[0].replica_identity_full);

    let d = parse(&config_text("postgresql://u@h/s", "postgresql://u@h/t", ""), &no_env).unwrap();
    assert_eq!(d.replication.warn_retained_wal, Some(DEFAULT_WARN_RETAINED_WAL));
    assert_eq!(d.replication.max_retained_wal, None);
    assert!(!d.tables[0].replica_identity_full);

    let off = parse(
        &config_text(
            "postgresql://u@h/s",
            "postgresql://u@h/t",
            "warn_retained_wal = \"off\"",
        ),
        &no_env,
    )
    .unwrap();
    assert_eq!(off.replication.warn_retained_wal, None);

    let bad = parse_err(&config_text(
        "postgresql://u@h/s",
        "postgresql://u@h/t",
        "max_retained_wal = \"lots\"",
    ))
    .to_string();
    assert!(
        bad.contains("replication.max_retained_wal") && bad.contains("\"2GB\""),
        "{bad}"
    );
    let bad = parse_err(&config_text("postgresql://u@h/s", "postgresql://u@h/t", "").replace(
        "source = \"public.items\"",
        "source = \"public.items\"\nreplica_identity = \"index\"",
    ))
    .to_string();
    assert!(bad.contains("replica_identity") && bad.contains("\"full\""), "{bad}");
    assert_eq!(parse_size("10GB"), Some(10 << 30));
    assert_eq!(parse_size("1024kB"), Some(1 << 20));
    assert_eq!(parse_size("12"), Some(12));
    assert_eq!(parse_size("1.5GB"), None);
    assert_eq!(parse_size("5 gb"), None);
}

#[test]
fn parses_with_defaults() {
    let text = config_text(
        "postgresql://replicator@127.0.0.1:5432/app",
        "postgres://app@db2/app2",
        "",
    );
    let c = parse(&text, &no_env).unwrap();
    assert_eq!(c.path, Path::new("/etc/pgvshift.toml"));
    assert_eq!(c.replication.slot, "pgvshift");
    assert_eq!(c.replication.publication, "pgvshift");
    assert_eq!(c.replication.batch_max_changes, DEFAULT_BATCH_MAX_CHANGES);
    assert_eq!(c.replication.status_interval, Duration::from_secs(1));
    assert_eq!(c.replication.max_retry_duration, Duration::from_secs(300));
    assert_eq!(c.snapshot.workers, 2);
    assert_eq!(
        c.tables,
        vec![TableConfig::new(
            QualifiedName::new("public", "items"),
            QualifiedName::new("public", "items")
        )]
    );
    assert_eq!(
        (c.source.host.as_str(), c.source.port, c.source.user.as_str()),
        ("127.0.0.1", 5432, "replicator")
    );
    assert_eq!(
        (c.target.host.as_str(), c.target.port, c.target.dbname.as_str()),
        ("db2", 5432, "app2")
    );
    assert_eq!(c.source.pg.get_dbname(), Some("app"));
    assert_eq!(c.source.pg.get_user(), Some("replicator"));
    assert_eq!(c.source.pg.get_ports(), &[5432]);
    assert_eq!(
        c.source.pg.get_hosts(),
        &[tokio_postgres::config::Host::Tcp("127.0.0.1".into())]
    );
}

#[test]
fn parses_tuning_and_table_mapping() {
    let text = r#"
[source]
url = "postgresql://a@h1/db"
[target]
url = "postgresql://a@h2/db"
[replication]
slot = "s_1"
publication = "p2"
batch_max_changes = 1
status_interval_secs = 3
max_retry_duration_secs = 0
[snapshot]
workers = 64
[[tables]]
source = "Items"
target = "archive.\"Items\""
[[tables]]
source = "\"Sch\".t"
"#;
    let c = parse(text, &no_env).unwrap();
    assert_eq!(c.replication.batch_max_changes, 1);
    assert_eq!(c.replication.status_interval, Duration::from_secs(3));
    assert_eq!(c.replication.max_retry_duration, Duration::ZERO);
    assert_eq!(c.snapshot.workers, 64);
    assert_eq!(c.tables[0].source, QualifiedName::new("public", "items"));
    assert_eq!(c.tables[0].target, QualifiedName::new("archive", "Items"));
    assert_eq!(c.tables[1].target, QualifiedName::new("Sch", "t"));
}

#[test]
fn env_overrides() {
    let file_src = "postgresql://file@src/db";
    let file_tgt = "postgresql://file@tgt/db";
    let full = config_text(file_src, file_tgt, "");
    let no_source_url = full.replacen(&format!("url = \"{file_src}\""), "", 1);
    let no_source_section = no_source_url.replacen("[source]", "", 1);
    let cases: Vec<EnvCase<'_>> = vec![
        ("file only", &full, vec![], Ok("src")),
        (
            "env wins over file",
            &full,
            vec![(SOURCE_URL_ENV, "postgresql://env@envhost/db")],
            Ok("envhost"),
        ),
        ("empty env ignored", &full, vec![(SOURCE_URL_ENV, "")], Ok("src")),
        (
            "url key optional with env",
            &no_source_url,
            vec![(SOURCE_URL_ENV, "postgresql://env@envhost/db")],
            Ok("envhost"),
        ),
        (
            "section optional with env",
            &no_source_section,
            vec![(SOURCE_URL_ENV, "postgresql://e@envhost/db")],
            Ok("envhost"),
        ),
        (
            "missing both",
            &no_source_url,
            vec![],
            Err(vec!["source.url", SOURCE_URL_ENV, "/etc/pgvshift.toml"]),
        ),
        (
            "missing section and env",
            &no_source_section,
            vec![],
            Err(vec!["source.url", SOURCE_URL_ENV]),
        ),
        (
            "bad env url names the variable",
            &full,
            vec![(SOURCE_URL_ENV, "postgresql://u:pw@h:99999/db")],
            Err(vec![SOURCE_URL_ENV, "invalid port", "postgresql://u:***@h:99999/db"]),
        ),
    ];
    for (name, text, vars, expected) in cases {
        let result = parse(text, &env_from(&vars));
        match (result, expected) {
            (Ok(c), Ok(host)) => {
                assert_eq!(c.source.host, host, "{name}");
                assert_eq!(c.target.host, "tgt", "{name}");
            }
            (Err(e), Err(fragments)) => {
                for f in fragments {
                    assert!(e.to_string().contains(f), "{name}: {e:?} lacks {f:?}");
                }
            }
            (r, e) => panic!("{name}: got {r:?}, expected {e:?}"),
        }
    }
    let e = parse(&full.replacen(&format!("url = \"{file_tgt}\""), "", 1), &no_env).unwrap_err();
    assert!(
        matches!(
            e,
            ConfigError::MissingUrl {
                key: "target.url",
                env_var: TARGET_URL_ENV,
                ..
            }
        ),
        "{e:?}"
    );
    let c = parse(&full, &env_from(&[(TARGET_URL_ENV, "postgresql://x@t2/db")])).unwrap();
    assert_eq!((c.source.host.as_str(), c.target.host.as_str()), ("src", "t2"));
}

#[test]
fn url_parsing() {
    use tokio_postgres::config::{Host, SslMode};
    let env = env_from(&[("USER", "osuser")]);
    // (url, host, port, user, dbname)
    let cases = [
        (
            "postgresql://replicator@127.0.0.1:5432/app",
            "127.0.0.1",
            5432,
            "replicator",
            "app",
        ),
        ("postgres://u@h", "h", 5432, "u", "u"),
        ("postgresql://h:6000", "h", 6000, "osuser", "osuser"),
        ("postgresql://h/", "h", 5432, "osuser", "osuser"),
        ("postgresql://us%40er@h/my%20db", "h", 5432, "us@er", "my db"),
        ("postgresql://u@[::1]:5433/d", "::1", 5433, "u", "d"),
        (
            "postgresql://u@%2Fvar%2Frun%2Fpostgresql/d",
            "/var/run/postgresql",
            5432,
            "u",
            "d",
        ),
        ("postgresql:///d?host=/tmp&port=5499", "/tmp", 5499, "osuser", "d"),
        ("postgresql:///?host=h&user=qu&dbname=qd", "h", 5432, "qu", "qd"),
        ("  postgresql://u@h/d  ", "h", 5432, "u", "d"),
    ];
    for (url, host, port, user, dbname) in cases {
        let ep = resolve_endpoint("source", url, Path::new("c.toml"), "o".into(), &env)
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(
            (ep.host.as_str(), ep.port, ep.user.as_str(), ep.dbname.as_str()),
            (host, port, user, dbname),
            "{url}"
        );
        assert_eq!(ep.pg.get_ports(), &[port], "{url}");
        let expected_host = if host.starts_with('/') {
            Host::Unix(PathBuf::from(host))
        } else {
            Host::Tcp(host.to_string())
        };
        assert_eq!(ep.pg.get_hosts(), &[expected_host], "{url}");
        assert_eq!(ep.is_unix_socket(), host.starts_with('/'));
    }

    let ep = resolve_endpoint(
        "source",
        "postgresql://u@h/d?sslmode=disable&application_name=pgv%20shift&connect_timeout=7&keepalives=0&target_session_attrs=read-write&options=-c%20x%3Dy",
        Path::new("c.toml"),
        "o".into(),
        &no_env,
    )
    .unwrap();
    assert_eq!(ep.pg.get_ssl_mode(), SslMode::Disable);
    assert_eq!(ep.pg.get_application_name(), Some("pgv shift"));
    assert_eq!(ep.pg.get_connect_timeout(), Some(&Duration::from_secs(7)));
    assert!(!ep.pg.get_keepalives());
    assert_eq!(ep.pg.get_options(), Some("-c x=y"));

    // (url, error fragment)
    let errors = [
        ("", "empty"),
        ("host=h user=u", "postgresql://"),
        ("mysql://u@h/d", "postgresql://"),
        ("postgresql://u@h/d?foo=1", "unknown query parameter `foo`"),
        (
            "postgresql://u@h/d?hostaddr=1.2.3.4",
            "unknown query parameter `hostaddr`",
        ),
        ("postgresql://u@h/d?sslmode", "`sslmode` has no value"),
        (
            "postgresql://u@h/d?sslmode=allow",
            "expected disable, prefer, require, verify-ca or verify-full",
        ),
        ("postgresql://u@h/d?connect_timeout=x", "connect_timeout"),
        ("postgresql://u@h:0/d", "port"),
        ("postgresql://u@h:70000/d", "invalid port"),
        ("postgresql://u@h/d?port=abc", "port \"abc\""),
        ("postgresql://u@h1,h2/d", "multiple hosts"),
        ("postgresql://u@/d", "no host"),
        ("postgresql:///d", "no host"),
        ("postgresql://h/d", "USER environment variable"),
        ("postgresql://u@h/d#x", "fragment"),
        ("postgresql://u@h/d%zz", "percent-encoding"),
        ("postgresql://u@h/d%ff", "UTF-8"),
    ];
    for (url, fragment) in errors {
        match resolve_endpoint("source", url, Path::new("c.toml"), "source.url".into(), &no_env) {
            Ok(ep) => panic!("{url}: expected an error, got {ep:?}"),
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.contains(fragment), "{url}: {msg:?} lacks {fragment:?}");
                assert!(msg.starts_with("source.url: "), "{msg}");
            }
        }
    }
}

#[test]
fn password_precedence() {
    let dir = TempDir::new("precedence");
    let passfile = dir.file("pgpass", "*:*:*:*:from-passfile\n", 0o600);
    let passfile = passfile.to_str().unwrap();
    let cases: [PasswordCase<'_>; 7] = [
        (
            "postgresql://u:from-url@h/d",
            vec![("PGPASSWORD", "from-env"), ("PGPASSFILE", passfile)],
            Some("from-url"),
        ),
        ("postgresql://u:p%3Aw%40d@h/d", vec![], Some("p:w@d")),
        (
            "postgresql://u@h/d?password=from-query",
            vec![("PGPASSWORD", "from-env")],
            Some("from-query"),
        ),
        (
            "postgresql://u@h/d",
            vec![("PGPASSWORD", "from-env"), ("PGPASSFILE", passfile)],
            Some("from-env"),
        ),
        (
            "postgresql://u:@h/d",
            vec![("PGPASSWORD", ""), ("PGPASSFILE", passfile)],
            Some("from-passfile"),
        ),
        ("postgresql://u@h/d", vec![("PGPASSFILE", "/nonexistent/pgpass")], None),
        ("postgresql://u@h/d", vec![], None),
    ];
    for (url, vars, expected) in cases {
        let ep = resolve_endpoint("source", url, Path::new("c.toml"), "o".into(), &env_from(&vars)).unwrap();
        assert_eq!(ep.password.as_deref(), expected, "{url} {vars:?}");
        assert_eq!(ep.pg.get_password(), expected.map(str::as_bytes), "{url} {vars:?}");
    }
}

#[test]
fn passfile_from_home_and_pgpassfile() {
    let home = TempDir::new("home");
    home.file(".pgpass", "h:5432:d:u:from-home\n", 0o600);
    let other = TempDir::new("other");
    let explicit = other.file("pass", "h:5432:d:u:from-pgpassfile\n", 0o600);
    let home_str = home.0.to_str().unwrap();
    let url = "postgresql://u@h/d";
    let ep = resolve_endpoint("s", url, Path::new("c"), "o".into(), &env_from(&[("HOME", home_str)])).unwrap();
    assert_eq!(ep.password.as_deref(), Some("from-home"));
    let vars = [("HOME", home_str), ("PGPASSFILE", explicit.to_str().unwrap())];
    let ep = resolve_endpoint("s", url, Path::new("c"), "o".into(), &env_from(&vars)).unwrap();
    assert_eq!(ep.password.as_deref(), Some("from-pgpassfile"));
}

#[cfg(unix)]
#[test]
fn passfile_permissions() {
    let dir = TempDir::new("perms");
    let url = "postgresql://u@h/d";
    // (mode, used?)
    for (mode, used) in [
        (0o600, true),
        (0o400, true),
        (0o640, false),
        (0o604, false),
        (0o644, false),
        (0o660, false),
    ] {
        let file = dir.file(&format!("pass-{mode:o}"), "*:*:*:*:pw\n", mode);
        let vars = [("PGPASSFILE", file.to_str().unwrap())];
        let ep = resolve_endpoint("s", url, Path::new("c"), "o".into(), &env_from(&vars)).unwrap();
        assert_eq!(ep.password.is_some(), used, "mode {mode:o}");
    }
    // A directory is not a plain file.
    let vars = [("PGPASSFILE", dir.0.to_str().unwrap())];
    let ep = resolve_endpoint("s", url, Path::new("c"), "o".into(), &env_from(&vars)).unwrap();
    assert_eq!(ep.password, None);
}

#[test]
fn passfile_matching() {
    let file = "\
# comment line: *:*:*:*:never
db1.example.com:5432:app:alice:alice-pw
db1.example.com:*:*:bob:bob-pw
*:5433:*:*:port-5433-pw
localhost:5432:app:carol:carol\\:pw\\\\x:ignored-extra-field
weird\\:host:5432:app:dave:dave-pw
\\*:5432:app:erin:literal-star-pw
db1.example.com:5432:app:frank:
*:*:*:*:fallback-pw\r
";
    // (host, port, db, user, expected)
    let cases = [
        ("db1.example.com", "5432", "app", "alice", Some("alice-pw")),
        ("db1.example.com", "5432", "other", "alice", Some("fallback-pw")),
        ("db1.example.com", "9999", "x", "bob", Some("bob-pw")),
        ("anything", "5433", "x", "y", Some("port-5433-pw")),
        ("localhost", "5432", "app", "carol", Some("carol:pw\\x")),
        ("weird:host", "5432", "app", "dave", Some("dave-pw")),
        ("*", "5432", "app", "erin", Some("literal-star-pw")),
        ("elsewhere", "5432", "app", "erin", Some("fallback-pw")),
        ("db1.example.com", "5432", "app", "frank", None),
        ("#", "x", "y", "z", Some("fallback-pw")),
    ];
    for (host, port, db, user, expected) in cases {
        assert_eq!(
            passfile_lookup(file, host, port, db, user).as_deref(),
            expected,
            "{host}:{port}:{db}:{user}"
        );
    }
    assert_eq!(
        passfile_lookup("h:5432:d:u\n", "h", "5432", "d", "u"),
        None,
        "too few fields"
    );
    assert_eq!(passfile_lookup("", "h", "5432", "d", "u"), None);
    assert_eq!(passfile_host("/var/run/postgresql"), "localhost");
    assert_eq!(passfile_host("/tmp/"), "localhost");
    assert_eq!(passfile_host("/srv/sock"), "/srv/sock");
    assert_eq!(passfile_host("db"), "db");
}

#[test]
fn unix_socket_passfile_uses_localhost() {
    let dir = TempDir::new("sock");
    let file = dir.file("pass", "localhost:5432:d:u:sock-pw\n", 0o600);
    let vars = [("PGPASSFILE", file.to_str().unwrap())];
    let ep = resolve_endpoint(
        "s",
        "postgresql://u@%2Ftmp/d",
        Path::new("c"),
        "o".into(),
        &env_from(&vars),
    )
    .unwrap();
    assert_eq!(ep.password.as_deref(), Some("sock-pw"));
}

#[test]
fn redaction() {
    let cases = [
        ("postgresql://u:secret@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgres://u@h/db", "postgres://u@h/db"),
        ("postgresql://h/db", "postgresql://h/db"),
        (
            "postgresql://u:p%40ss@h/db?sslmode=require",
            "postgresql://u:***@h/db?sslmode=require",
        ),
        (
            "postgresql://u@h/db?sslmode=require&password=secret&application_name=x",
            "postgresql://u@h/db?sslmode=require&password=***&application_name=x",
        ),
        (
            "postgresql://u@h/db?pass%77ord=secret",
            "postgresql://u@h/db?pass%77ord=***",
        ),
        ("postgresql://u:se/cret@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u:se?cret@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u:se@cret@h/db", "postgresql://u:***@h/db"),
        (
            "postgresql://u:secret@h:x/db?application_name=a@b",
            "postgresql://u:***@h:x/db?application_name=a@b",
        ),
        (
            "postgresql://u@h:5432/db?application_name=a@b",
            "postgresql://u@h:5432/db?application_name=a@b",
        ),
        ("POSTGRESQL://u:secret@h", "POSTGRESQL://u:***@h"),
        (
            "host=h user=u password=secret dbname=d",
            "host=h user=u password=*** dbname=d",
        ),
        (
            "host=h password = 'sec ret\\' x' port=5432",
            "host=h password = *** port=5432",
        ),
        ("password=secret", "password=***"),
        ("host=h", "host=h"),
        ("host=h password='unterminated secret", "<unparseable url>"),
        ("secret", "<unparseable url>"),
        ("user:secret@host", "<unparseable url>"),
        ("://u:secret@h", "<unparseable url>"),
        ("", "<unparseable url>"),
    ];
    for (input, expected) in cases {
        let redacted = redact_url(input);
        assert_eq!(redacted, expected, "{input}");
        assert!(
            !redacted.contains("secret") && !redacted.contains("cret@"),
            "{input} -> {redacted}"
        );
    }
    assert_eq!(
        redact_secrets("invalid type: string \"postgresql://u:secret@h/db\", expected x; password=secret"),
        "invalid type: string \"postgresql://u:***@h/db\", expected x; password=***"
    );
}

#[test]
fn passwords_never_in_debug_or_display() {
    let dir = TempDir::new("debug");
    let passfile = dir.file("pass", &format!("*:*:*:*:{SECRET}-file\n"), 0o600);
    let text = config_text(&format!("postgresql://u:{SECRET}@src/db"), "postgresql://u@tgt/db", "");
    for vars in [
        vec![("PGPASSFILE", passfile.to_str().unwrap())],
        vec![("PGPASSWORD", SECRET)],
    ] {
        let config = parse(&text, &env_from(&vars)).unwrap();
        assert_eq!(config.source.password.as_deref(), Some(SECRET));
        assert!(config.target.password.as_deref().is_some_and(|p| p.starts_with(SECRET)));
        for shown in [
            format!("{config:?}"),
            format!("{config:#?}"),
            format!("{:?}", config.source),
            format!("{}", config.source),
            format!("{}", config.target),
            config.source.redacted_url.clone(),
            format!("{:?}", config.source.pg),
        ] {
            assert!(!shown.contains(SECRET), "password leaked: {shown}");
        }
        assert!(format!("{:?}", config.source).contains("***"));
    }
}

#[test]
fn passwords_never_in_errors() {
    let texts = [
        // invalid URLs of all kinds
        config_text(&format!("postgresql://u:{SECRET}@h:99999/db"), "postgresql://u@t/db", ""),
        config_text(&format!("postgresql://u:{SECRET}@h/db?bogus=1"), "postgresql://u@t/db", ""),
        config_text(&format!("postgresql://u:{SECRET}@h/db#frag"), "postgresql://u@t/db", ""),
        config_text(&format!("postgresql://u:{SECRET}@/db"), "postgresql://u@t/db", ""),
        config_text(&format!("postgresql://u:{SECRET}/x@h/db"), "postgresql://u@t/db", ""),
        config_text(&format!("postgresql://u@h/db?password={SECRET}&sslmode=bad"), "postgresql://u@t/db", ""),
        config_text(&format!("host=h password={SECRET}"), "postgresql://u@t/db", ""),
        config_text(SECRET, "postgresql://u@t/db", ""),
        // TOML errors on a line holding the password
        format!("[source]\nurl = \"postgresql://u:{SECRET}@h/db\n"),
        format!("[source]\npassword = \"{SECRET}\"\n"),
        format!("[source]\nurl = \"postgresql://u:{SECRET}@h/db\" x\n"),
        format!("[replication]\nslot = \"postgresql://u:{SECRET}@h/db\"\npublication = \"p\"\n[[tables]]\nsource = \"t\""),
        format!("[source]\nurl = \"postgresql://u@h/db\"\n[replication]\nslot = \"s\"\npublication = \"p\"\nbatch_max_changes = \"postgresql://u:{SECRET}@h\"\n"),
    ];
    for text in texts {
        let e = parse_err(&text);
        let (shown, debug) = (e.to_string(), format!("{e:?}"));
        assert!(
            !shown.contains(SECRET) && !debug.contains(SECRET),
            "password leaked:\n{shown}\n{debug}"
        );
    }
}

#[test]
fn validation_errors() {
    let base = |replication: &str, rest: &str| {
        format!(
            "[source]\nurl = \"postgresql://u@src/db\"\n[target]\nurl = \"postgresql://u@tgt/db\"\n[replication]\n{replication}\n{rest}"
        )
    };
    let ok_repl = "slot = \"s\"\npublication = \"p\"";
    let one_table = "[[tables]]\nsource = \"public.items\"";
    let long = "a".repeat(64);
    // (case, text, key, fragments that must appear in the message)
    let cases: Vec<(&str, String, &str, Vec<&str>)> = vec![
        (
            "slot upper case",
            base("slot = \"My-Slot\"\npublication = \"p\"", one_table),
            "replication.slot",
            vec!["\"My-Slot\"", "lowercase", "\"my_slot\"", ":6:8:"],
        ),
        (
            "slot empty",
            base("slot = \"\"\npublication = \"p\"", one_table),
            "replication.slot",
            vec!["is empty"],
        ),
        (
            "slot too long",
            base(&format!("slot = \"{long}\"\npublication = \"p\""), one_table),
            "replication.slot",
            vec!["64 bytes", "63"],
        ),
        (
            "publication dash",
            base("slot = \"s\"\npublication = \"pub-1\"", one_table),
            "replication.publication",
            vec!["\"pub_1\""],
        ),
        (
            "publication unicode",
            base("slot = \"s\"\npublication = \"pübl\"", one_table),
            "replication.publication",
            vec!["lowercase"],
        ),
        (
            "batch zero",
            base(&format!("{ok_repl}\nbatch_max_changes = 0"), one_table),
            "replication.batch_max_changes",
            vec!["at least 1", ":8:21:"],
        ),
        (
            "batch negative",
            base(&format!("{ok_repl}\nbatch_max_changes = -5"), one_table),
            "replication.batch_max_changes",
            vec!["-5"],
        ),
        (
            "status zero",
            base(&format!("{ok_repl}\nstatus_interval_secs = 0"), one_table),
            "replication.status_interval_secs",
            vec!["between 1 and 3600"],
        ),
        (
            "retry negative",
            base(&format!("{ok_repl}\nmax_retry_duration_secs = -1"), one_table),
            "replication.max_retry_duration_secs",
            vec!["-1", "between 0 and 604800", "0 never reconnects", "default 300"],
        ),
        (
            "retry too long",
            base(&format!("{ok_repl}\nmax_retry_duration_secs = 604801"), one_table),
            "replication.max_retry_duration_secs",
            vec!["604801", "between 0 and 604800"],
        ),
        (
            "workers zero",
            base(ok_repl, &format!("[snapshot]\nworkers = 0\n{one_table}")),
            "snapshot.workers",
            vec!["between 1 and 64"],
        ),
        (
            "workers too many",
            base(ok_repl, &format!("[snapshot]\nworkers = 65\n{one_table}")),
            "snapshot.workers",
            vec!["65", "between 1 and 64"],
        ),
        (
            "no tables",
            base(ok_repl, ""),
            "tables",
            vec!["at least one", "[[tables]]"],
        ),
        (
            "empty tables array",
            format!("tables = []\n{}", base(ok_repl, "")),
            "tables",
            vec!["at least one"],
        ),
        (
            "bad source name",
            base(ok_repl, "[[tables]]\nsource = \"a.b.c\""),
            "[[tables]] #1 source",
            vec!["not a table name"],
        ),
        (
            "bad target name",
            base(ok_repl, "[[tables]]\nsource = \"t\"\ntarget = \"my table\""),
            "[[tables]] #1 target",
            vec!["contains spaces"],
        ),
        (
            "duplicate source after case folding",
            base(
                ok_repl,
                "[[tables]]\nsource = \"public.items\"\ntarget = \"a\"\n[[tables]]\nsource = \"Items\"\ntarget = \"b\"",
            ),
            "[[tables]] #2 source",
            vec!["public.items", "#1 (line 9)", "once"],
        ),
        (
            "two sources, one target",
            base(
                ok_repl,
                "[[tables]]\nsource = \"a\"\ntarget = \"x.t\"\n[[tables]]\nsource = \"b\"\ntarget = \"x.t\"",
            ),
            "[[tables]] #2 target",
            vec!["x.t", "#1", "distinct"],
        ),
        (
            "implicit target collides",
            base(
                ok_repl,
                "[[tables]]\nsource = \"a\"\ntarget = \"public.b\"\n[[tables]]\nsource = \"b\"",
            ),
            "[[tables]] #2 target",
            vec!["public.b"],
        ),
        (
            "same database onto itself",
            base(ok_repl, one_table).replace("u@tgt/db", "u@src:5432/db"),
            "tables",
            vec!["same database", "onto itself", "public.items"],
        ),
    ];
    for (name, text, key, fragments) in cases {
        let e = parse_err(&text);
        let msg = e.to_string();
        match &e {
            ConfigError::Invalid { key: k, path, .. } => {
                assert_eq!(k, key, "{name}: {msg}");
                assert_eq!(path, Path::new("/etc/pgvshift.toml"));
            }
            other => panic!("{name}: expected Invalid, got {other:?}"),
        }
        assert!(msg.starts_with("/etc/pgvshift.toml"), "{name}: {msg}");
        for f in fragments {
            assert!(msg.contains(f), "{name}: {msg:?} lacks {f:?}");
        }
    }
    // Same database, but mapped to another table: fine.
    let text = base(ok_repl, "[[tables]]\nsource = \"items\"\ntarget = \"items_v2\"").replace("u@tgt/db", "u@src/db");
    parse(&text, &no_env).unwrap();
}

#[test]
fn toml_errors_carry_path_and_position() {
    let valid = config_text("postgresql://u@s/d", "postgresql://u@t/d", "");
    // (case, text, line, column, fragment)
    let cases = [
        (
            "syntax",
            "[source]\nurl = \"postgresql://u@h/db\nx = 1\n".to_string(),
            2,
            27,
            "invalid basic string",
        ),
        (
            "unknown key",
            valid.replace("slot = ", "slott = "),
            7,
            1,
            "unknown field `slott`",
        ),
        (
            "unknown section",
            format!("{valid}\n[snapshots]\nworkers = 1\n"),
            13,
            2,
            "unknown field `snapshots`",
        ),
        (
            "unknown table key",
            valid.replace("source = \"public.items\"", "sourc = \"public.items\""),
            11,
            1,
            "unknown field `sourc`",
        ),
        (
            "wrong type",
            valid.replace("slot = \"pgvshift\"", "slot = 5"),
            7,
            8,
            "invalid type: integer `5`, expected a string",
        ),
        (
            "wrong type for number",
            format!("{valid}\n[snapshot]\nworkers = \"2\""),
            14,
            11,
            "invalid type: string \"2\", expected an integer",
        ),
        (
            "missing key",
            valid.replace("publication = \"pgvshift\"", ""),
            6,
            1,
            "missing field `publication`",
        ),
    ];
    for (name, text, line, column, fragment) in cases {
        let e = parse_err(&text);
        let msg = e.to_string();
        match &e {
            ConfigError::Toml { line: l, column: c, .. } => assert_eq!((*l, *c), (line, column), "{name}: {msg}"),
            other => panic!("{name}: expected Toml, got {other:?}"),
        }
        assert!(
            msg.starts_with("/etc/pgvshift.toml: TOML parse error at line"),
            "{name}: {msg}"
        );
        assert!(msg.contains(&format!("line {line}, column {column}")), "{name}: {msg}");
        assert!(msg.contains(fragment), "{name}: {msg:?} lacks {fragment:?}");
    }
    let e = parse_err("[source]\nurl = \"postgresql://u@h/db\"\n");
    assert!(e.to_string().contains("missing field `replication`"), "{e}");
}

#[test]
fn load_from_disk() {
    let dir = TempDir::new("load");
    let missing = dir.0.join("nope.toml");
    let e = Config::load_with_env(&missing, &no_env).unwrap_err();
    assert!(matches!(e, ConfigError::NotFound { .. }));
    assert_eq!(e.to_string(), format!("config file {} not found", missing.display()));
    assert_eq!(e.path(), missing);

    let path = dir.file(
        "c.toml",
        &config_text("postgresql://u@s/d", "postgresql://u@t/d", ""),
        0o644,
    );
    let c = Config::load_with_env(&path, &no_env).unwrap();
    assert_eq!(c.path, path);
    let e = Config::load_with_env(&dir.0, &no_env).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }), "{e:?}");
}

#[test]
fn line_col_counts_characters() {
    let text = "ab\nçd=x\n";
    assert_eq!(line_col(text, 0), (1, 1));
    assert_eq!(line_col(text, 3), (2, 1));
    assert_eq!(line_col(text, 6), (2, 3));
    assert_eq!(line_col(text, 1000), (3, 1));
}

#[test]
fn name_suggestions() {
    for (input, expected) in [
        ("My-Slot", "my_slot"),
        ("", "pgvshift"),
        ("---", "pgvshift"),
        ("ok_1", "ok_1"),
    ] {
        assert_eq!(suggest_name(input), expected);
    }
    assert_eq!(suggest_name(&"x".repeat(100)).len(), MAX_NAME_BYTES);
}
