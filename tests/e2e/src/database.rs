use secrecy::SecretString;
use sqlx::{Connection, Executor, PgConnection, PgPool};
use uuid::Uuid;

use lockbridge_runtime::{configuration::DatabaseSettings, db};

/// A freshly created database with every migration applied.
pub struct TestDatabase {
    pub pool: PgPool,
    pub url: String,
    pub name: String,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let admin_url = crate::postgres_admin_url();
        let name = format!("lockbridge_test_{}", Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .expect("connect to PostgreSQL");
        admin
            .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
            .await
            .expect("create test database");
        let url = match admin_url.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("LOCKBRIDGE_TEST_POSTGRES must end with /<database>"),
        };
        let pool = db::connect_and_migrate(&DatabaseSettings {
            url: SecretString::from(url.clone()),
            // Tests run in parallel against one server (100 connections by default).
            max_connections: 3,
        })
        .await
        .expect("migrate test database");
        Self { pool, url, name }
    }
}
