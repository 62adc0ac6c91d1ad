//! The words of a file's text, for search (`file_texts`). Plain-text
//! uploads are indexed by the database itself (schema 6); text extracted
//! by a job is indexed here, inside the transaction that completes it.

use crate::error::StoreError;
use spin_sdk::pg::ParameterValue;
use spindrive_domain::transform::TextExtraction;
use spindrive_service::db::Db;

/// How much text is indexed: a tsvector holds at most 1 MB.
pub const MAX_INDEXED_BYTES: usize = 256 << 10;

/// The start of `text` that is indexed: at most `MAX_INDEXED_BYTES`, cut
/// on a character boundary, without NULs (PostgreSQL text has none).
fn indexable(text: &str) -> String {
    let mut end = text.len().min(MAX_INDEXED_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].replace('\0', "")
}

/// Indexes `text`, extracted by `extraction`, as the words of file
/// `file_id`, parsed with its text search configuration, if the file still
/// has the content
/// `storage_key` it was read from. The row keeps that content's key, so if
/// new content commits meanwhile, searches ignore the stale words.
pub async fn index(
    db: &Db,
    file_id: &str,
    storage_key: &str,
    extraction: &TextExtraction,
    text: &str,
) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO file_texts (file_id, file_path, source, language, words) \
         SELECT id, file_path, $3, $4::text::regconfig, to_tsvector($4::text::regconfig, $5) FROM files \
          WHERE id = $1 AND file_path = 'pg:' || $2 \
         ON CONFLICT (file_id) DO UPDATE SET file_path = EXCLUDED.file_path, source = EXCLUDED.source, \
             language = EXCLUDED.language, words = EXCLUDED.words, indexed_at = (now() AT TIME ZONE 'utc')",
        &[
            ParameterValue::Uuid(file_id.to_owned()),
            ParameterValue::Str(storage_key.to_owned()),
            ParameterValue::Str(extraction.source().to_owned()),
            ParameterValue::Str(extraction.search_language().to_owned()),
            ParameterValue::Str(indexable(text)),
        ],
    )
    .await
    .map_err(|error| match error.violated_constraint() {
        // Deleted while this was waiting on it.
        Some("file_texts_file_id_fkey") => StoreError::NotFound("file"),
        _ => error.into(),
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        let text = "é".repeat(MAX_INDEXED_BYTES);
        let cut = indexable(&text);
        assert!(cut.len() <= MAX_INDEXED_BYTES && cut.chars().all(|c| c == 'é'));
        assert_eq!(indexable("a\0b"), "ab");
    }
}
