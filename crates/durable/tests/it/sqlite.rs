//! What is specific to the SQLite driver: sharing a database with other drivers and the stored
//! format (JSON values, byte keys) that makes data readable with any SQLite client.

use std::sync::Arc;

use async_trait::async_trait;
use ledge_durable::{DurableHost, DurableObject, HostConfig, ObjectContext, ObjectError, SqliteStorage};
use ledge_sqlite::{Database, Options};

struct Notes;

#[async_trait]
impl DurableObject for Notes {
    type Request = (String, serde_json::Value);
    type Response = ();

    async fn handle(
        &mut self,
        ctx: &mut ObjectContext,
        (key, value): Self::Request,
    ) -> Result<(), ObjectError> {
        ctx.storage().put(key, &value)?;
        Ok(())
    }
}

#[tokio::test]
async fn a_shared_database_holds_the_tables_and_values_are_stored_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(
        dir.path().join("shared.db"),
        "CREATE TABLE IF NOT EXISTS other (x INTEGER);",
        Options::default(),
    )
    .unwrap();
    let storage = SqliteStorage::with_database(db.clone()).await.unwrap();
    let host = DurableHost::new(Arc::new(storage), HostConfig::default());
    let notes = host.namespace("NOTES", |_| Notes).unwrap();
    let run = host.start(std::future::pending()).unwrap();
    let stub = notes.stub_for_name("n");
    stub.call(("greeting".into(), serde_json::json!({"text": "hé"}))).await.unwrap();
    run.shutdown().await;

    let id = notes.id_from_name("n");
    let (key, value, object_id): (Vec<u8>, Vec<u8>, Vec<u8>) = db
        .read(|c| -> ledge_sqlite::Result<_> {
            Ok(c.query_row(
                "SELECT key, value, object_id FROM durable_kv WHERE namespace = 'NOTES'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(key, b"greeting");
    assert_eq!(String::from_utf8(value).unwrap(), r#"{"text":"hé"}"#);
    assert_eq!(object_id, id.as_bytes().to_vec());
}
