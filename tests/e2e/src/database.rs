use secrecy::SecretString;
use sqlx::{Connection, Executor, PgConnection, PgPool};
use uuid::Uuid;

use lockbridge_runtime::{configuration::DatabaseSettings, db};

/// A freshly created database, with every migration applied unless made empty.
pub struct TestDatabase {
    pub pool: PgPool,
    pub url: String,
    pub name: String,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let database = Self::create_empty().await;
        db::MIGRATOR
            .run(&database.pool)
            .await
            .expect("migrate test database");
        database
    }

    /// A freshly created database without any table, for what must bring the schema in.
    pub async fn create_empty() -> Self {
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
        let pool = db::connect(&DatabaseSettings {
            url: SecretString::from(url.clone()),
            // Tests run in parallel against one server (100 connections by default).
            max_connections: 3,
        })
        .await
        .expect("connect to the test database");
        Self { pool, url, name }
    }
}
