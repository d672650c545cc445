//! `pgvshift check` against real servers: every check reports the object and the fix, exits 1
//! on a blocking finding, and changes nothing; `run` refuses on the same findings before
//! creating anything.

mod support;

use std::path::{Path, PathBuf};

use pgvshift::testkit::localpg::ClusterOptions;
use support::TestEnv;

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// One finding of `check --json`: (level, check, object, message, fix).
type Found = (String, String, String, String, String);

/// `pgvshift check --config F [extra]`: (exit code, stdout, stderr).
fn check(env: &TestEnv, config: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["check", "--config", path_str(config)];
    args.extend_from_slice(extra);
    env.run_binary(&args)
}

/// The findings of `check --json` as (level, check, object, message, fix).
fn check_json(env: &TestEnv, config: &Path, extra: &[&str]) -> (i32, Vec<Found>) {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = check(env, config, &args);
    let v: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("check --json printed no JSON ({e}):\n{stdout}\n{stderr}"));
    let findings = v["findings"]
        .as_array()
        .expect("findings array")
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or("").to_string();
            (s("level"), s("check"), s("object"), s("message"), s("fix"))
        })
        .collect::<Vec<_>>();
    assert_eq!(
        v["blocking"].as_u64().unwrap() as usize,
        findings.iter().filter(|f| f.0 == "blocking").count()
    );
    (code, findings)
}

/// The one blocking finding of `check` (by check id) whose object contains `object`.
fn blocking<'a>(findings: &'a [Found], check: &str, object: &str) -> &'a Found {
    findings
        .iter()
        .find(|f| f.0 == "blocking" && f.1 == check && f.2.contains(object))
        .unwrap_or_else(|| panic!("no blocking `{check}` finding about {object} in {findings:#?}"))
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn config_file_problems_exit_2_naming_file_position_and_key() {
    let env = TestEnv::new("chk_cfg", "");
    let good_head = format!(
        "[source]\nurl = \"{}\"\n[target]\nurl = \"{}\"\n",
        env.source_url(),
        env.target_url()
    );
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        ("missing", String::new(), vec!["not found"]),
        ("not_toml", "this is not = = toml\n".into(), vec!["TOML parse error", "line 1, column 6"]),
        (
            "unknown_key",
            format!("{good_head}[replication]\nslot = \"s\"\npublication = \"p\"\nwokers = 2\n[[tables]]\nsource = \"t\"\n"),
            vec!["wokers", "line 8, column 1"],
        ),
        (
            "missing_key",
            format!("{good_head}[replication]\nslot = \"s\"\n[[tables]]\nsource = \"t\"\n"),
            vec!["publication"],
        ),
        (
            "wrong_type",
            format!("{good_head}[replication]\nslot = \"s\"\npublication = \"p\"\nbatch_max_changes = \"ten\"\n[[tables]]\nsource = \"t\"\n"),
            vec!["replication.batch_max_changes", "line 8, column 21"],
        ),
        (
            "bad_slot_name",
            format!("{good_head}[replication]\nslot = \"My-Slot\"\npublication = \"p\"\n[[tables]]\nsource = \"t\"\n"),
            vec!["replication.slot", ":6:8", "lowercase letters a-z, digits 0-9 and underscores", "\"my_slot\""],
        ),
        (
            "bad_publication_name",
            format!("{good_head}[replication]\nslot = \"s\"\npublication = \"pub lication\"\n[[tables]]\nsource = \"t\"\n"),
            vec!["replication.publication", ":7:"],
        ),
    ];
    for (name, text, wanted) in cases {
        let path = env.dir.join(format!("{name}.toml"));
        if !text.is_empty() {
            std::fs::write(&path, text).unwrap();
        }
        let (code, stdout, stderr) = check(&env, &path, &[]);
        assert_eq!(code, 2, "{name}: exit code\n{stdout}\n{stderr}");
        assert!(stderr.contains(path_str(&path)), "{name}: names the file:\n{stderr}");
        for w in wanted {
            assert!(stderr.contains(w), "{name}: expected {w:?} in:\n{stderr}");
        }
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{name}: one line, no trace:\n{stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_setup_passes_and_nothing_is_changed() {
    let env = TestEnv::new(
        "chk_ok",
        "CREATE TABLE items (id int PRIMARY KEY, embedding vector(3)); INSERT INTO items VALUES (1, '[1,2,3]');",
    );
    let config = env.write_config(&[("public.items", None)], "");
    let (code, stdout, stderr) = check(&env, &config, &[]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("ok       [wal_level] source: wal_level = logical"),
        "{stdout}"
    );
    assert!(stdout.contains("0 blocking: ready to run"), "{stdout}");
    let (code, findings) = check_json(&env, &config, &[]);
    assert_eq!(code, 0);
    assert!(
        findings.iter().any(|f| f.1 == "pgvector" && f.0 == "ok"),
        "{findings:#?}"
    );
    assert_eq!(env.footprint(), (false, false, false), "check changes nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_table_problems_name_the_table_and_the_fix() {
    let env = TestEnv::new(
        "chk_tables",
        "CREATE TABLE items (id int PRIMARY KEY, embedding vector(3));
         CREATE TABLE notes (body text, embedding vector(3));
         CREATE TABLE flags (body text);
         ALTER TABLE flags REPLICA IDENTITY NOTHING;
         CREATE VIEW items_view AS SELECT * FROM items;",
    );
    let config = env.write_config(
        &[
            ("public.itmes", None),
            ("public.notes", None),
            ("public.flags", None),
            ("public.items_view", None),
        ],
        "",
    );
    let (code, findings) = check_json(&env, &config, &[]);
    assert_eq!(code, 1, "{findings:#?}");
    let missing = blocking(&findings, "table_exists", "public.itmes");
    assert!(missing.3.contains("does not exist on the source"), "{missing:?}");
    assert!(
        missing.4.contains("did you mean public.items"),
        "suggests the close name: {missing:?}"
    );
    let notes = blocking(&findings, "replica_identity", "public.notes");
    assert!(
        notes.3.contains("no primary key and REPLICA IDENTITY DEFAULT")
            && notes.3.contains("application's UPDATE and DELETE"),
        "{notes:?}"
    );
    assert!(
        notes.4.contains("add a primary key") && notes.4.contains("replica_identity = \"full\""),
        "the fix names both choices: {notes:?}"
    );
    let flags = blocking(&findings, "replica_identity", "public.flags");
    assert!(flags.3.contains("REPLICA IDENTITY NOTHING"), "{flags:?}");
    let view = blocking(&findings, "table_exists", "public.items_view");
    assert!(view.3.contains("not a plain table"), "{view:?}");

    // `run` refuses on the same findings and creates nothing.
    let (code, _, stderr) = env.run_binary(&["run", "--config", path_str(&config)]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("public.notes") && stderr.contains("did you mean public.items"),
        "{stderr}"
    );
    assert_eq!(env.footprint(), (false, false, false), "a refused run changes nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_identity_full_on_request_keeps_the_applications_updates_working() {
    let env = TestEnv::new(
        "chk_rifull",
        "CREATE TABLE notes (body text, n int, embedding vector(3));
         INSERT INTO notes SELECT 'note ' || i, i, '[1,2,3]' FROM generate_series(1, 50) i;",
    );
    let config_path = env.write_config_with(&[("public.notes", "replica_identity = \"full\"")], "");
    let (code, findings) = check_json(&env, &config_path, &[]);
    assert_eq!(code, 0, "{findings:#?}");
    let warn = findings
        .iter()
        .find(|f| f.1 == "replica_identity")
        .expect("a replica identity finding");
    assert_eq!(warn.0, "warning");
    assert!(
        warn.3.contains("ALTER TABLE public.notes REPLICA IDENTITY FULL"),
        "{warn:?}"
    );
    assert_eq!(
        env.source_value("SELECT relreplident FROM pg_class WHERE relname = 'notes'"),
        "d",
        "check changes nothing"
    );

    let config = pgvshift::config::Config::load_with_env(&config_path, &|_| None).unwrap();
    let run = env.spawn_run(config);
    env.wait_streaming().await;
    assert_eq!(
        env.source_value("SELECT relreplident FROM pg_class WHERE relname = 'notes'"),
        "f"
    );
    // The application's UPDATE and DELETE work on the published table and are replicated.
    env.source_value("UPDATE notes SET n = n + 100 WHERE n <= 10");
    env.source_value("DELETE FROM notes WHERE n BETWEEN 20 AND 29");
    env.wait_caught_up().await;
    env.assert_same("notes", "body").await;
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_table_problems_name_column_and_both_types() {
    let env = TestEnv::new(
        "chk_target",
        "CREATE TABLE items (id int PRIMARY KEY, title text, embedding vector(3));
         INSERT INTO items SELECT i, 't' || i, '[1,2,3]' FROM generate_series(1, 20) i;
         CREATE TABLE docs (id int PRIMARY KEY, embedding vector(3));
         INSERT INTO docs VALUES (1, '[1,1,1]');",
    );
    env.target_value(
        "CREATE TABLE items (id int PRIMARY KEY, embedding vector(4), owner text NOT NULL);
         CREATE TABLE docs (id int PRIMARY KEY, embedding vector(3));
         INSERT INTO docs SELECT i, '[0,0,0]' FROM generate_series(1, 7) i;",
    );
    let config = env.write_config(&[("public.items", None), ("public.docs", None)], "");
    let (code, findings) = check_json(&env, &config, &[]);
    assert_eq!(code, 1);
    let dims = findings
        .iter()
        .find(|f| f.1 == "target_columns" && f.3.contains("embedding"))
        .expect("the embedding column finding");
    assert!(
        dims.3.contains("vector(4)") && dims.3.contains("vector(3)"),
        "names both types: {dims:?}"
    );
    assert!(
        dims.4
            .contains("ALTER TABLE public.items ALTER COLUMN embedding TYPE vector(3)"),
        "{dims:?}"
    );
    let title = findings
        .iter()
        .find(|f| f.1 == "target_columns" && f.3.contains("no column title"))
        .expect("missing column finding");
    assert!(title.3.contains("text expected"), "{title:?}");
    let owner = findings
        .iter()
        .find(|f| f.1 == "target_columns" && f.3.contains("owner"))
        .expect("NOT NULL extra column finding");
    assert!(owner.3.contains("NOT NULL without a default"), "{owner:?}");
    let rows = blocking(&findings, "target_rows", "public.docs");
    assert!(
        rows.3.contains("already has 7 row(s)") && rows.4.contains("--truncate-target"),
        "{rows:?}"
    );

    // With --truncate-target the non-empty table is a warning; fix the other table and run.
    env.target_value("DROP TABLE items");
    let (code, findings) = check_json(&env, &config, &["--truncate-target"]);
    assert_eq!(code, 0, "{findings:#?}");
    assert!(findings
        .iter()
        .any(|f| f.0 == "warning" && f.1 == "target_rows" && f.3.contains("7 row(s)")));
    let child = env.spawn_binary(&["run", "--config", path_str(&config), "--truncate-target"]);
    env.wait_streaming().await;
    env.assert_same("docs", "id").await;
    env.assert_same("items", "id").await;
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("emptied the target table") && stderr.contains("rows_removed=7"),
        "run reports how many rows it removed:\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_pgvector_on_the_target_says_how_to_install_it() {
    let env = TestEnv::new("chk_novector", "CREATE TABLE items (id int PRIMARY KEY, h halfvec(3));");
    env.target_value("DROP EXTENSION vector");
    let config = env.write_config(&[("public.items", None)], "");
    let (code, findings) = check_json(&env, &config, &[]);
    assert_eq!(code, 1);
    let f = blocking(&findings, "pgvector", "halfvec(3)");
    assert!(
        f.3.contains("pgvector is not installed in the target database"),
        "{f:?}"
    );
    assert_eq!(f.4, "CREATE EXTENSION vector; in the target database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_without_the_engine_says_what_it_needs() {
    // The shared target cluster: Lantern not created in the database, no vchord preload
    // (whether or not scripts/engines.sh installed the engines on this machine).
    let env = TestEnv::new(
        "chk_engines",
        "CREATE TABLE items (id int PRIMARY KEY, emb vector(3)); CREATE INDEX items_emb ON items USING hnsw (emb vector_l2_ops);",
    );
    let lantern = env.write_config_with(&[("public.items", "profile = \"lantern\"")], "");
    let (code, findings) = check_json(&env, &lantern, &[]);
    assert_eq!(code, 1, "{findings:#?}");
    let f = blocking(&findings, "target_extensions", "target extension lantern");
    assert!(f.3.contains("index items_emb on public.items needs it"), "{f:?}");
    assert!(
        f.4.contains("CREATE EXTENSION lantern; in the target database"),
        "{f:?}"
    );
    // Without pgvector in the target database: pgvector first, then Lantern.
    env.target_value("DROP EXTENSION vector");
    let (_, findings) = check_json(&env, &lantern, &[]);
    let f = blocking(&findings, "target_extensions", "target extension lantern");
    assert!(
        f.4.contains("CREATE EXTENSION vector; CREATE EXTENSION lantern; (pgvector first"),
        "{f:?}"
    );
    env.target_value("CREATE EXTENSION vector");

    // VectorChord: installed on the server or not, the fix ends with the preload and CREATE.
    let vchord = env.write_config_with(&[("public.items", "profile = \"vectorchord\"")], "");
    let (code, findings) = check_json(&env, &vchord, &[]);
    assert_eq!(code, 1, "{findings:#?}");
    let f = findings
        .iter()
        .find(|f| f.0 == "blocking" && f.2 == "target extension vchord")
        .unwrap_or_else(|| panic!("no blocking finding about vchord: {findings:#?}"));
    assert!(
        f.4.contains("ALTER SYSTEM SET shared_preload_libraries = 'vchord'; restart the target server; then CREATE EXTENSION vchord CASCADE;"),
        "{f:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privileges_on_source_and_target() {
    let env = TestEnv::new(
        "chk_priv",
        "CREATE TABLE items (id int PRIMARY KEY, embedding vector(3));",
    );
    let role = format!("{}_app", env.name);
    env.source_value(&format!("CREATE ROLE {role} LOGIN"));
    env.target_value(&format!("CREATE ROLE {role} LOGIN; REVOKE CREATE ON SCHEMA public FROM PUBLIC; REVOKE CREATE ON DATABASE {} FROM PUBLIC", env.name));
    let url = |port: u16| format!("postgresql://{role}@127.0.0.1:{port}/{}", env.name);
    let text = format!(
        "[source]\nurl = \"{}\"\n[target]\nurl = \"{}\"\n[replication]\nslot = \"{}\"\npublication = \"{}\"\n[[tables]]\nsource = \"public.items\"\n",
        url(env.source.port()),
        url(env.target.port()),
        env.name,
        env.name
    );
    let config = write(&env.dir, "priv.toml", &text);
    let (code, findings) = check_json(&env, &config, &[]);
    assert_eq!(code, 1);
    let repl = blocking(&findings, "replication_privilege", &role);
    assert!(
        repl.4.contains(&format!("ALTER ROLE {role} WITH REPLICATION")),
        "{repl:?}"
    );
    assert!(repl.4.contains("rds_replication"), "{repl:?}");
    let select = blocking(&findings, "table_select", "public.items");
    assert_eq!(select.4, format!("GRANT SELECT ON public.items TO {role};"));
    let owner = blocking(&findings, "publication_owner", "public.items");
    assert!(owner.4.contains("CREATE PUBLICATION"), "{owner:?}");
    let schema = blocking(&findings, "target_privilege", "target schema public");
    assert!(
        schema.4.contains(&format!("GRANT CREATE ON SCHEMA public TO {role}")),
        "{schema:?}"
    );
    let state = blocking(&findings, "target_privilege", "target schema pgvshift");
    assert!(state.4.contains("GRANT CREATE ON DATABASE"), "{state:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slot_and_publication_that_are_not_ours() {
    let env = TestEnv::new(
        "chk_slot",
        "CREATE TABLE items (id int PRIMARY KEY, embedding vector(3)); CREATE TABLE other (id int PRIMARY KEY);",
    );
    // A slot of this name made by something else (another plugin), and a publication of this
    // name with another table.
    env.source_value(&format!(
        "SELECT pg_create_logical_replication_slot('{}', 'test_decoding'); CREATE PUBLICATION {} FOR TABLE other",
        env.name, env.name
    ));
    let config = env.write_config(&[("public.items", None)], "");
    let (code, findings) = check_json(&env, &config, &[]);
    assert_eq!(code, 1);
    let slot = blocking(&findings, "slot", &env.name);
    assert!(
        slot.3.contains("plugin test_decoding") && slot.3.contains("belongs to something else"),
        "{slot:?}"
    );
    let publication = blocking(&findings, "publication", &env.name);
    assert!(
        publication.3.contains("public.other") && publication.3.contains("public.items"),
        "{publication:?}"
    );
    assert!(
        publication.4.contains(&format!("DROP PUBLICATION {}", env.name)),
        "{publication:?}"
    );
    // cleanup leaves both alone: neither is pgvshift's.
    let (code, stdout, stderr) = env.run_binary(&["cleanup", "--config", path_str(&config), "--yes"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("leave replication slot"), "{stdout}");
    assert!(env.footprint().0, "a foreign slot is never dropped");
    assert!(env.footprint().1, "an unmarked publication is never dropped");
    env.source_value(&format!(
        "SELECT pg_drop_replication_slot('{}'); DROP PUBLICATION {}",
        env.name, env.name
    ));

    // Our own pgoutput slot without progress on the target (the target's state was lost):
    // blocking, and the fix is the cleanup command, which then removes it.
    env.source_value(&format!(
        "SELECT pg_create_logical_replication_slot('{}', 'pgoutput')",
        env.name
    ));
    let (code, findings) = check_json(&env, &config, &[]);
    assert_eq!(code, 1);
    let slot = blocking(&findings, "slot", &env.name);
    assert!(slot.3.contains("the target has no progress for it"), "{slot:?}");
    assert!(slot.4.contains("pgvshift cleanup --config"), "{slot:?}");
    let (code, _, stderr) = env.run_binary(&["cleanup", "--config", path_str(&config), "--yes"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(env.footprint(), (false, false, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_database_is_refused() {
    let env = TestEnv::new(
        "chk_same",
        "CREATE TABLE items (id int PRIMARY KEY, embedding vector(3));",
    );
    // The same database reached under another host name.
    let other = env.source_url().replace("127.0.0.1", "localhost");
    let text = format!(
        "[source]\nurl = \"{}\"\n[target]\nurl = \"{other}\"\n[replication]\nslot = \"{}\"\npublication = \"{}\"\n[[tables]]\nsource = \"public.items\"\ntarget = \"public.items_copy\"\n",
        env.source_url(),
        env.name,
        env.name
    );
    let config = write(&env.dir, "same.toml", &text);
    let (code, findings) = check_json(&env, &config, &[]);
    assert_eq!(code, 1);
    let f = blocking(&findings, "same_database", "source and target");
    assert!(f.3.contains("are the same database"), "{f:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_server_settings() {
    let env = TestEnv::new_private(
        "chk_server",
        "CREATE TABLE items (id int PRIMARY KEY, embedding vector(3));
         SELECT pg_create_physical_replication_slot('someone_elses');",
        ClusterOptions::new("source")
            .setting("wal_level", "replica")
            .setting("max_replication_slots", "1")
            .setting("max_wal_senders", "0"),
        ClusterOptions::new("target"),
    );
    let config = env.write_config(&[("public.items", None)], "");
    let (code, findings) = check_json(&env, &config, &[]);
    assert_eq!(code, 1);
    let wal = blocking(&findings, "wal_level", "source");
    assert!(wal.3.contains("wal_level = replica"), "{wal:?}");
    assert!(
        wal.4.starts_with("ALTER SYSTEM SET wal_level = logical; then restart"),
        "{wal:?}"
    );
    let slots = blocking(&findings, "replication_slots", "source");
    assert!(
        slots.3.contains("max_replication_slots = 1 and 1 slot(s) exist"),
        "{slots:?}"
    );
    let senders = blocking(&findings, "wal_senders", "source");
    assert!(senders.3.contains("max_wal_senders = 0"), "{senders:?}");
    let (code, _, stderr) = env.run_binary(&["run", "--config", path_str(&config)]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("wal_level = replica"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidated_slot_requires_a_fresh_snapshot() {
    let env = TestEnv::new_private(
        "chk_lost",
        "CREATE TABLE items (id int PRIMARY KEY, pad text); INSERT INTO items VALUES (1, 'a');",
        ClusterOptions::new("source").setting("max_slot_wal_keep_size", "1MB"),
        ClusterOptions::new("target"),
    );
    let config_path = env.write_config(&[("public.items", None)], "");
    let config = pgvshift::config::Config::load_with_env(&config_path, &|_| None).unwrap();
    let run = env.spawn_run(config);
    env.wait_streaming().await;
    run.stop().await;
    env.wait_slot_inactive();
    // While pgvshift is stopped, the source writes far more WAL than max_slot_wal_keep_size and
    // checkpoints: it invalidates the slot.
    for _ in 0..4 {
        env.source_value("INSERT INTO items SELECT g, repeat('x', 500) FROM generate_series(2, 40000) g ON CONFLICT (id) DO UPDATE SET pad = excluded.pad || 'y'; SELECT pg_switch_wal(); CHECKPOINT;");
    }
    assert_eq!(
        env.source_value(&format!(
            "SELECT wal_status FROM pg_replication_slots WHERE slot_name = '{}'",
            env.name
        )),
        "lost"
    );
    let (code, findings) = check_json(&env, &config_path, &[]);
    assert_eq!(code, 1);
    let f = blocking(&findings, "slot", &env.name);
    assert!(
        f.3.contains("invalidated") && f.3.contains("a fresh snapshot is required"),
        "{f:?}"
    );
    assert!(f.4.contains("cleanup") && f.4.contains("--truncate-target"), "{f:?}");
    let (code, _, stderr) = env.run_binary(&["run", "--config", path_str(&config_path)]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("a fresh snapshot is required"), "{stderr}");
    // The fix works as written: cleanup, then run --truncate-target copies afresh.
    let (code, _, stderr) = env.run_binary(&["cleanup", "--config", path_str(&config_path), "--yes"]);
    assert_eq!(code, 0, "{stderr}");
    let child = env.spawn_binary(&["run", "--config", path_str(&config_path), "--truncate-target"]);
    env.wait_streaming().await;
    env.assert_same("items", "id").await;
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_servers_are_findings_with_one_line_causes() {
    let env = TestEnv::new("chk_conn", "");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = format!(
        "[source]\nurl = \"postgresql://postgres:Sup3rSecret@127.0.0.1:{closed}/{db}\"\n[target]\nurl = \"postgresql://postgres:Sup3rSecret@127.0.0.1:{}/no_such_db\"\n[replication]\nslot = \"s\"\npublication = \"p\"\n[[tables]]\nsource = \"items\"\n",
        env.target.port(),
        db = env.name
    );
    let config = write(&env.dir, "conn.toml", &text);
    let (code, stdout, stderr) = check(&env, &config, &[]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        !stdout.contains("Sup3rSecret") && !stderr.contains("Sup3rSecret"),
        "{stdout}\n{stderr}"
    );
    let line = |needle: &str| {
        stdout
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?}:\n{stdout}"))
            .to_string()
    };
    let source = line("[connect] source");
    assert!(
        source.starts_with("BLOCKING")
            && source.contains("connection refused")
            && source.contains(&format!("127.0.0.1:{closed}")),
        "{source}"
    );
    let target = line("[connect] target");
    assert!(
        target.starts_with("BLOCKING") && target.contains("no_such_db"),
        "{target}"
    );
    assert!(stderr.contains("2 blocking problem(s) found"), "{stderr}");
}
