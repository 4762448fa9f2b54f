//! The `users` table: chat and API senders, their custody and address.

use sqlx::Executor;

use super::StoreError;

/// The columns every user read returns, in [`UserRow`]'s order.
const COLS: &str =
    "id, channel, external_id, phone, display_name, lang, custody, address, created_at_unix_ms";

/// A stored user, read by column name.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct UserRow {
    pub id: String,
    pub channel: String,
    pub external_id: String,
    pub phone: Option<String>,
    pub display_name: Option<String>,
    pub lang: Option<String>,
    pub custody: String,
    pub address: String,
    pub created_at_unix_ms: i64,
}

/// A user to insert; `derivation_index` is set for custodial users (their key is derived at that index).
#[derive(Clone, Debug)]
pub struct NewUserRow<'a> {
    pub row: &'a UserRow,
    pub derivation_index: Option<i64>,
}

pub async fn by_chat<'e, E>(exec: E, channel: &str, external_id: &str) -> Result<Option<UserRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(&format!(
        "SELECT {COLS} FROM users WHERE channel = $1 AND external_id = $2"
    ))
    .bind(channel)
    .bind(external_id)
    .fetch_optional(exec)
    .await?)
}

/// The first registered user with this E.164 phone.
pub async fn first_by_phone<'e, E>(exec: E, phone_e164: &str) -> Result<Option<UserRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(&format!(
        "SELECT {COLS} FROM users WHERE phone = $1 ORDER BY created_at_unix_ms LIMIT 1"
    ))
    .bind(phone_e164)
    .fetch_optional(exec)
    .await?)
}

/// Sets a user's name; returns whether the user exists.
pub async fn set_display_name<'e, E>(exec: E, id: &str, name: &str) -> Result<bool, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let r = sqlx::query("UPDATE users SET display_name = $1 WHERE id = $2")
        .bind(name)
        .bind(id)
        .execute(exec)
        .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn by_id<'e, E>(exec: E, id: &str) -> Result<Option<UserRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(&format!("SELECT {COLS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(exec)
        .await?)
}

/// The user holding `address` (lower-case 0x-hex).
pub async fn by_address<'e, E>(exec: E, address: &str) -> Result<Option<UserRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(
        sqlx::query_as(&format!("SELECT {COLS} FROM users WHERE address = $1"))
            .bind(address)
            .fetch_optional(exec)
            .await?,
    )
}

/// The key derivation index of a custodial user; `None` for an unknown or self-custody user.
pub async fn custodial_index<'e, E>(exec: E, user_id: &str) -> Result<Option<i64>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(
        sqlx::query_scalar("SELECT derivation_index FROM users WHERE id = $1 AND custody = 'custodial'")
            .bind(user_id)
            .fetch_optional(exec)
            .await?,
    )
}

pub async fn insert<'e, E>(exec: E, new: NewUserRow<'_>) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let u = new.row;
    sqlx::query(
        "INSERT INTO users (id, channel, external_id, phone, display_name, lang, custody, derivation_index, \
         address, created_at_unix_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&u.id)
    .bind(&u.channel)
    .bind(&u.external_id)
    .bind(&u.phone)
    .bind(&u.display_name)
    .bind(&u.lang)
    .bind(&u.custody)
    .bind(new.derivation_index)
    .bind(&u.address)
    .bind(u.created_at_unix_ms)
    .execute(exec)
    .await?;
    Ok(())
}

/// How a user holds their key: `custodial` (derived by the node at `derivation_index`) or `self`.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct CustodyRow {
    pub custody: String,
    pub address: String,
    pub derivation_index: Option<i64>,
}

pub async fn custody<'e, E>(exec: E, user_id: &str) -> Result<Option<CustodyRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(
        sqlx::query_as("SELECT custody, address, derivation_index FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(exec)
            .await?,
    )
}

/// Whether `address` (lower-case 0x-hex) belongs to a custodial user.
pub async fn is_custodial_address<'e, E>(exec: E, address: &str) -> Result<bool, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let id: Option<String> =
        sqlx::query_scalar("SELECT id FROM users WHERE address = $1 AND custody = 'custodial'")
            .bind(address)
            .fetch_optional(exec)
            .await?;
    Ok(id.is_some())
}

/// Most addresses [`custodial_among`] takes at once (one bind parameter each).
pub const ADDRESSES_PER_QUERY_MAX: usize = 200;

/// Those of `addresses` (lower-case 0x-hex, at most [`ADDRESSES_PER_QUERY_MAX`]) that belong to custodial users.
pub async fn custodial_among<'e, E>(exec: E, addresses: &[String]) -> Result<Vec<String>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    if addresses.is_empty() {
        return Ok(Vec::new());
    }
    if addresses.len() > ADDRESSES_PER_QUERY_MAX {
        return Err(StoreError::Corrupt(format!(
            "{} addresses in one query (at most {ADDRESSES_PER_QUERY_MAX})",
            addresses.len()
        )));
    }
    let placeholders: Vec<String> = (1..=addresses.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT address FROM users WHERE custody = 'custodial' AND address IN ({})",
        placeholders.join(", ")
    );
    let mut q = sqlx::query_scalar(&sql);
    for a in addresses {
        q = q.bind(a);
    }
    Ok(q.fetch_all(exec).await?)
}

/// The custodial address of the first registered user with this E.164 phone (the recipient of a P2P transfer).
pub async fn first_custodial_address_by_phone<'e, E>(
    exec: E,
    phone_e164: &str,
) -> Result<Option<String>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_scalar(
        "SELECT address FROM users WHERE phone = $1 AND custody = 'custodial' ORDER BY created_at_unix_ms LIMIT 1",
    )
    .bind(phone_e164)
    .fetch_optional(exec)
    .await?)
}

/// Whether any user holds `address`.
pub async fn address_taken<'e, E>(exec: E, address: &str) -> Result<bool, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let id: Option<String> = sqlx::query_scalar("SELECT id FROM users WHERE address = $1")
        .bind(address)
        .fetch_optional(exec)
        .await?;
    Ok(id.is_some())
}
