-- spindrive schema 6: the text in files, searchable. Text comes from a PDF's
-- text layer or OCR (written by the worker, with the content version it
-- read) and from plain-text uploads (read here, by a trigger, so every way
-- content arrives is covered). One row per file, for its current content.

CREATE TABLE IF NOT EXISTS file_texts (
    file_id      uuid        PRIMARY KEY REFERENCES files (id) ON DELETE CASCADE,
    source       varchar(16) NOT NULL CHECK (source IN ('upload', 'pdf_text', 'ocr')),
    -- The text search configuration the words were stemmed with; a query
    -- is parsed with the same one.
    language     regconfig   NOT NULL DEFAULT 'simple',
    words        tsvector    NOT NULL,
    indexed_at   timestamp   NOT NULL DEFAULT (now() AT TIME ZONE 'utc')
);
CREATE INDEX IF NOT EXISTS file_texts_words_idx ON file_texts USING gin (words);

-- What a job produced besides its file (OCR's lines, boxes, confidences).
ALTER TABLE transformation_jobs ADD COLUMN IF NOT EXISTS result_details jsonb;

-- New content makes the old text wrong: it goes, and a plain-text file's
-- first 256 KiB are indexed (a tsvector holds at most 1 MB). Bytes that are
-- not UTF-8 are not text: nothing is indexed, the upload still succeeds.
CREATE OR REPLACE FUNCTION index_uploaded_text() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    head bytea;
    body text;
BEGIN
    DELETE FROM file_texts WHERE file_id = NEW.id;
    IF split_part(lower(NEW.content_type), ';', 1) NOT IN ('text/plain', 'text/markdown', 'text/csv') THEN
        RETURN NULL;
    END IF;
    SELECT substring(data FROM 1 FOR 262144) INTO head
      FROM file_chunks WHERE storage_key = substr(NEW.file_path, 4)::uuid AND seq = 0;
    IF head IS NULL THEN
        RETURN NULL;
    END IF;
    -- The cut may split a character: up to three of its bytes are dropped.
    FOR cut IN 0..3 LOOP
        BEGIN
            body := convert_from(substring(head FROM 1 FOR length(head) - cut), 'UTF8');
            EXIT;
        EXCEPTION WHEN character_not_in_repertoire THEN
            IF length(head) < 262144 THEN
                RETURN NULL;  -- not cut: not UTF-8 text
            END IF;
        END;
    END LOOP;
    IF body IS NOT NULL THEN
        INSERT INTO file_texts (file_id, source, words)
        VALUES (NEW.id, 'upload', to_tsvector('simple', body));
    END IF;
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS files_index_text ON files;
CREATE TRIGGER files_index_text AFTER INSERT OR UPDATE OF file_path ON files
    FOR EACH ROW EXECUTE FUNCTION index_uploaded_text();
