//! TLS and connection errors against real servers.
//!
//! A private source/target pair (shared by the tests of this file) accepts only TLS
//! (`hostssl` lines only, `ssl = on` with a self-signed certificate for localhost and
//! 127.0.0.1): `postgres` without a password, other roles with scram-sha-256, replication
//! connections for `postgres` only. On it, a full `run` with `sslmode=verify-full` (snapshot and
//! stream, every session encrypted, the walsender included), and the one-line errors for
//! `sslmode=disable`, a wrong root certificate, a wrong password and a replication connection
//! that pg_hba.conf refuses. On the shared plain pair (ssl = off): `sslmode=require` and a port
//! nothing listens on.

mod support;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use pgvshift::config::Config;
use pgvshift::testkit::localpg::{ClusterOptions, LocalCluster};
use support::TestEnv;

/// Exit code of a runtime error, which a failed connection is.
const CONNECT_EXIT_CODE: i32 = 3;

const TLS_ONLY_HBA: &str = "\
hostssl all          postgres 127.0.0.1/32 trust
hostssl replication  postgres 127.0.0.1/32 trust
hostssl all          all      127.0.0.1/32 scram-sha-256
";

/// The TLS-only source and target clusters, started once for this file's tests.
fn tls_clusters() -> (&'static LocalCluster, &'static LocalCluster) {
    static FIRST: OnceLock<TestEnv> = OnceLock::new();
    let env = FIRST.get_or_init(|| {
        TestEnv::new_private(
            "tlsonly",
            "",
            ClusterOptions::new("tls_source")
                .with_tls()
                .pg_hba(TLS_ONLY_HBA)
                .setting("log_connections", "on"),
            ClusterOptions::new("tls_target").with_tls().pg_hba(TLS_ONLY_HBA),
        )
    });
    (env.source, env.target)
}

/// A test's own databases on the TLS-only clusters.
fn tls_env(prefix: &str, source_sql: &str) -> TestEnv {
    let (source, target) = tls_clusters();
    TestEnv::on(prefix, source_sql, source, target)
}

/// `postgresql://<userinfo>@<host>:<port>/<db><query>`
fn url(userinfo: &str, host: &str, cluster: &LocalCluster, db: &str, query: &str) -> String {
    format!("postgresql://{userinfo}@{host}:{}/{db}{query}", cluster.port())
}

fn root_cert(cluster: &LocalCluster) -> &Path {
    cluster.tls_root_cert().expect("the TLS cluster has a certificate")
}

/// `pgvshift plan --config <config>`: asserts the exit code of a connection error and that
/// stderr is exactly one line starting `error: `; returns that line.
fn plan_fails(env: &TestEnv, config: &Path) -> String {
    let (code, stdout, stderr) = env.run_binary(&["plan", "--config", config.to_str().unwrap()]);
    assert_eq!(
        code, CONNECT_EXIT_CODE,
        "exit code\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_eq!(stdout, "", "nothing on stdout");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "stderr must be one line:\n{stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("Caused by"), "{stderr}");
    lines[0].to_string()
}

fn assert_contains(text: &str, fragments: &[&str]) {
    for f in fragments {
        assert!(text.contains(f), "{text:?}\nlacks {f:?}");
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// `(backend_type, ssl)` of this test's pgvshift sessions on `cluster`.
fn pgvshift_sessions(env: &TestEnv, cluster: &LocalCluster) -> Vec<(String, bool)> {
    let out = cluster
        .psql(
            &env.name,
            &format!(
                "SELECT a.backend_type, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
                 WHERE a.datname = '{db}' AND a.application_name IN ('pgvshift', 'pgvshift_run_{db}')
                 ORDER BY 1",
                db = env.name
            ),
        )
        .unwrap();
    out.lines()
        .map(|line| {
            let (kind, ssl) = line.split_once('|').expect("two columns");
            (kind.to_string(), ssl == "t")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_snapshot_and_stream_between_tls_only_servers() {
    let env = tls_env(
        "tlsrun",
        "CREATE TABLE items (id int PRIMARY KEY, note text, embedding vector(3));
         INSERT INTO items SELECT g, 'n' || g, ARRAY[g, g * 0.5, -g]::vector FROM generate_series(1, 200) g;",
    );
    let verify = |cluster: &LocalCluster| format!("?sslmode=verify-full&sslrootcert={}", root_cert(cluster).display());
    // The source by IP address (the certificate's IP subjectAltName is checked, on the SQL and
    // the replication connection), the target by name (its DNS subjectAltName).
    let source_url = url("postgres", "127.0.0.1", env.source, &env.name, &verify(env.source));
    let target_url = url("postgres", "localhost", env.target, &env.name, &verify(env.target));
    let path = env.write_config_with_urls("verify-full.toml", &source_url, &target_url, &["public.items"]);
    let config = Config::load_with_env(&path, &|_| None).unwrap();
    let run = env.spawn_run(config);
    env.wait_streaming().await;

    let source = env.source_client().await;
    source
        .batch_execute(
            "INSERT INTO items SELECT g, 'new' || g, ARRAY[g, 1, 2]::vector FROM generate_series(201, 230) g;
             UPDATE items SET embedding = '[9,9,9]', note = 'updated' WHERE id % 7 = 0;
             DELETE FROM items WHERE id % 11 = 0;
             BEGIN; INSERT INTO items VALUES (1000, 'in a transaction', '[1,2,3]'); UPDATE items SET note = NULL WHERE id = 1; COMMIT;",
        )
        .await
        .unwrap();
    env.wait_caught_up().await;
    env.assert_same("items", "id").await;
    assert_eq!(
        env.target_value("SELECT count(*) FROM items WHERE note = 'updated'"),
        "30"
    );

    // Every pgvshift session is encrypted, the walsender streaming from the source included:
    // the live ones in pg_stat_ssl (on the source only the walsender is left while streaming),
    // and every one the source ever authorized in its log (log_connections = on).
    let on_source = pgvshift_sessions(&env, env.source);
    let on_target = pgvshift_sessions(&env, env.target);
    assert!(
        on_source.iter().any(|(kind, _)| kind == "walsender"),
        "no walsender for pgvshift on the source: {on_source:?}"
    );
    assert!(!on_target.is_empty(), "no pgvshift session on the target");
    for (side, sessions) in [("source", &on_source), ("target", &on_target)] {
        assert!(
            sessions.iter().all(|(_, ssl)| *ssl),
            "{side}: a pgvshift session without TLS: {sessions:?}"
        );
    }
    let log = std::fs::read_to_string(env.source.log_file()).unwrap();
    let authorized: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains(&format!("postgres@{} ", env.name))
                && l.contains("authorized: ")
                && l.contains("application_name=pgvshift ")
        })
        .collect();
    let replication = authorized
        .iter()
        .filter(|l| l.contains("replication connection authorized"))
        .count();
    assert!(
        replication >= 2 && authorized.len() > replication,
        "expected SQL and replication (slot, stream) connections in the source log: {authorized:#?}"
    );
    for line in &authorized {
        assert!(line.contains("SSL enabled (protocol=TLSv1."), "not encrypted: {line}");
    }
    run.stop().await;
}

#[test]
fn sslmode_disable_against_a_tls_only_server_says_to_set_sslmode() {
    let env = tls_env("tlsdisable", "");
    let source_url = url(
        "postgres:S3cretTls",
        "127.0.0.1",
        env.source,
        &env.name,
        "?sslmode=disable",
    );
    let target_url = url("postgres", "127.0.0.1", env.target, &env.name, "");
    let config = env.write_config_with_urls("disable.toml", &source_url, &target_url, &["public.items"]);
    let line = plan_fails(&env, &config);
    assert_contains(
        &line,
        &[
            &format!(
                "error: cannot connect to the source postgresql://postgres:***@127.0.0.1:{}/{}?sslmode=disable: ",
                env.source.port(),
                env.name
            ),
            "the server accepts only TLS connections",
            "no encryption",
            "(set sslmode=require",
            "in the source URL)",
        ],
    );
    assert!(!line.contains("S3cretTls"), "{line}");
}

#[test]
fn sslmode_require_against_a_server_without_tls_says_it_does_not_offer_tls() {
    let env = TestEnv::new("tlsrequire", "");
    let source_url = url("postgres", "127.0.0.1", env.source, &env.name, "?sslmode=require");
    let config = env.write_config_with_urls("require.toml", &source_url, &env.target_url(), &["public.items"]);
    let line = plan_fails(&env, &config);
    assert_contains(
        &line,
        &[
            "error: cannot connect to the source postgresql://postgres@127.0.0.1:",
            "the server does not offer TLS, and sslmode=require requires it",
            "enable ssl on the server",
            "sslmode=prefer",
        ],
    );
}

#[test]
fn verify_full_with_an_unrelated_root_certificate_fails_verification() {
    let env = tls_env("tlswrongroot", "");
    let other: PathBuf = env.dir.join("other-root.crt");
    pgvshift::testkit::localpg::make_self_signed_certificate(
        &other,
        &env.dir.join("other-root.key"),
        "unrelated",
        "DNS:localhost,IP:127.0.0.1",
    )
    .unwrap();
    let query = format!("?sslmode=verify-full&sslrootcert={}", other.display());
    let source_url = url("postgres", "127.0.0.1", env.source, &env.name, &query);
    let target_url = url("postgres", "127.0.0.1", env.target, &env.name, "");
    let config = env.write_config_with_urls("wrong-root.toml", &source_url, &target_url, &["public.items"]);
    let line = plan_fails(&env, &config);
    assert_contains(
        &line,
        &[
            "error: cannot connect to the source postgresql://postgres@127.0.0.1:",
            &format!(
                "the server's certificate failed verification with sslmode=verify-full, sslrootcert={}: unknown issuer",
                other.display()
            ),
            "set sslrootcert to the CA certificate that signed the server's certificate",
        ],
    );
}

#[test]
fn a_wrong_password_names_the_user_and_never_shows_the_password() {
    let env = tls_env("tlspassword", "");
    let role = format!("{}_user", env.name);
    env.source_value(&format!("CREATE ROLE {role} LOGIN PASSWORD 'RightPassw0rd'"));
    let source_url = url(
        &format!("{role}:Wr0ngSecret"),
        "127.0.0.1",
        env.source,
        &env.name,
        "?sslmode=require",
    );
    let target_url = url("postgres", "127.0.0.1", env.target, &env.name, "");
    let config = env.write_config_with_urls("password.toml", &source_url, &target_url, &["public.items"]);
    // stdout is empty and stderr this one line (plan_fails checks), so the password is nowhere
    let line = plan_fails(&env, &config);
    assert!(!line.contains("Wr0ngSecret"), "the password leaked: {line}");
    assert_contains(
        &line,
        &[
            &format!("error: cannot connect to the source postgresql://{role}:***@127.0.0.1:"),
            &format!("password authentication failed for user \"{role}\""),
            &format!("(check the password of user {role}: it is taken from the source URL, else from PGPASSWORD"),
        ],
    );
}

#[test]
fn an_unreachable_server_is_a_one_line_connection_refused() {
    let env = TestEnv::new("tlsunreachable", "");
    let port = closed_port();
    let source_url = format!("postgresql://postgres:S3cretTls@127.0.0.1:{port}/{}", env.name);
    let config = env.write_config_with_urls("unreachable.toml", &source_url, &env.target_url(), &["public.items"]);
    let line = plan_fails(&env, &config);
    assert_eq!(
        line,
        format!(
            "error: cannot connect to the source postgresql://postgres:***@127.0.0.1:{port}/{}: connection refused (is the server running and listening on 127.0.0.1:{port}?)",
            env.name
        )
    );
}

/// A user who may log in and create the publication (scram over TLS) but lacks the REPLICATION
/// attribute, which the server would check only when the replication connection starts: the
/// preflight catches it first, before anything is created, with the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_replication_is_caught_before_anything_changes() {
    let env = tls_env(
        "tlsrepl",
        "CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1);",
    );
    let role = format!("{}_user", env.name);
    env.source_value(&format!(
        "CREATE ROLE {role} LOGIN PASSWORD 'Repl1cat0r'; ALTER TABLE items OWNER TO {role};
         GRANT CREATE ON DATABASE {db} TO {role};",
        db = env.name
    ));
    let query = format!("?sslmode=verify-full&sslrootcert={}", root_cert(env.source).display());
    let source_url = url(
        &format!("{role}:Repl1cat0r"),
        "127.0.0.1",
        env.source,
        &env.name,
        &query,
    );
    let target_url = url("postgres", "127.0.0.1", env.target, &env.name, "");
    let path = env.write_config_with_urls("repl.toml", &source_url, &target_url, &["public.items"]);
    let config = Config::load_with_env(&path, &|_| None).unwrap();
    let message = env.spawn_run(config).failure().await;
    assert!(!message.contains("Repl1cat0r"), "{message}");
    assert_contains(
        &message,
        &[
            "blocking problems found, nothing was changed",
            &format!("source role {role}: has neither the REPLICATION attribute"),
            &format!("Fix: ALTER ROLE {role} WITH REPLICATION;"),
        ],
    );
    assert_eq!(
        env.source_value("SELECT count(*) FROM pg_publication"),
        "0",
        "nothing was created on the source"
    );
}

/// A server whose certificate names another host: `verify-full` refuses it with a name
/// mismatch; `verify-ca` checks only the chain on the SQL connections (`plan` succeeds), while
/// the replication client (pgwire-replication 0.5.0 with this rustls) checks the name even
/// with `verify-ca`, and `run` says so in its one-line error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_ca_checks_the_chain_but_verify_full_also_the_host_name() {
    let env = TestEnv::new_private(
        "tlsname",
        "CREATE TABLE items (id int PRIMARY KEY, embedding vector(3));
         INSERT INTO items SELECT g, ARRAY[g, 0, 1]::vector FROM generate_series(1, 50) g;",
        ClusterOptions::new("tls_renamed").with_tls(),
        ClusterOptions::new("plain_target"),
    );
    // Swap in a certificate for db.example.test only (written in place: the server's files keep
    // their owner and mode), and make the server load it.
    let (cert, key) = (env.dir.join("renamed.crt"), env.dir.join("renamed.key"));
    pgvshift::testkit::localpg::make_self_signed_certificate(&cert, &key, "db.example.test", "DNS:db.example.test")
        .unwrap();
    let server_dir = env.source.socket_dir();
    std::fs::write(server_dir.join("server.crt"), std::fs::read(&cert).unwrap()).unwrap();
    std::fs::write(server_dir.join("server.key"), std::fs::read(&key).unwrap()).unwrap();
    env.source_value("SELECT pg_reload_conf()");
    let config_for = |mode: &str| {
        let query = format!("?sslmode={mode}&sslrootcert={}", cert.display());
        let source_url = url("postgres", "127.0.0.1", env.source, &env.name, &query);
        env.write_config_with_urls(
            &format!("{mode}.toml"),
            &source_url,
            &env.target_url(),
            &["public.items"],
        )
    };

    // pg_reload_conf() only signals: wait until new sessions get the new certificate.
    let full = config_for("verify-full");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let line = loop {
        let line = plan_fails(&env, &full);
        if !line.contains("unknown issuer") || std::time::Instant::now() > deadline {
            break line;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_contains(
        &line,
        &[
            "the server's certificate failed verification with sslmode=verify-full",
            "name mismatch: it is not valid for host 127.0.0.1",
            "db.example.test",
            "or use sslmode=verify-ca to check the chain but not the name",
        ],
    );

    let ca = config_for("verify-ca");
    let (code, stdout, stderr) = env.run_binary(&["plan", "--config", ca.to_str().unwrap()]);
    assert_eq!(code, 0, "plan with verify-ca:\n{stdout}\n{stderr}");
    assert!(stdout.contains("public.items"), "{stdout}");

    let message = env
        .spawn_run(Config::load_with_env(&ca, &|_| None).unwrap())
        .failure()
        .await;
    assert_contains(
        &message,
        &[
            "cannot open a replication connection to the source postgresql://postgres@127.0.0.1:",
            "name mismatch: it is not valid for host 127.0.0.1, and the replication client checks the name even with sslmode=verify-ca",
            "(connect to a host name the certificate names, in the source URL;",
        ],
    );
}
