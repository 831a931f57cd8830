//! The tables published for realtime (`supabase_realtime`), with their columns as the
//! `postgres_changes` payload names them (`{name, type}`, type as Postgres's short name).

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::PgPool;

#[derive(Debug, Clone, Serialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
}

#[derive(Debug, Default)]
pub struct Publication {
    tables: BTreeMap<String, Vec<Column>>,
}

impl Publication {
    pub async fn load(pool: &PgPool) -> Result<Publication, sqlx::Error> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            r#"select p.tablename::text, a.attname::text, t.typname::text
                 from pg_publication_tables p
                 join pg_namespace n on n.nspname = p.schemaname
                 join pg_class c on c.relnamespace = n.oid and c.relname = p.tablename
                 join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
                 join pg_type t on t.oid = a.atttypid
                where p.pubname = 'supabase_realtime' and p.schemaname = 'public'
                order by p.tablename, a.attnum"#,
        )
        .fetch_all(pool)
        .await?;
        let mut tables: BTreeMap<String, Vec<Column>> = BTreeMap::new();
        for (table, name, type_name) in rows {
            tables.entry(table).or_default().push(Column { name, type_name });
        }
        Ok(Publication { tables })
    }

    pub fn columns(&self, table: &str) -> Option<&[Column]> {
        self.tables.get(table).map(Vec::as_slice)
    }
}
