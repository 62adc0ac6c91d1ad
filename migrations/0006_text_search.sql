-- spindrive schema 6: the text in files, searchable. Text comes from a PDF's
-- text layer or OCR (written by the worker) and from plain-text uploads
-- (read here, by a trigger, so every way content arrives is covered). One
-- row per file, for the content it was read from.

CREATE TABLE IF NOT EXISTS file_texts (
    file_id      uuid        PRIMARY KEY REFERENCES files (id) ON DELETE CASCADE,
    -- The content the text was read from (`files.file_path` then): a search
    -- only counts words of the file's current content, whatever the order
    -- in which a replacement and a worker's indexing commit.
    file_path    text        NOT NULL,
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

-- A plain-text file's first 256 KiB, indexed (a tsvector holds at most
-- 1 MB). Bytes that are not UTF-8 are not text: nothing is indexed.
CREATE OR REPLACE FUNCTION index_uploaded_text(file uuid, path text, content_type text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    head bytea;
    body text;
BEGIN
    IF trim(split_part(lower(content_type), ';', 1)) NOT IN ('text/plain', 'text/markdown', 'text/csv') THEN
        RETURN;
    END IF;
    SELECT substring(data FROM 1 FOR 262144) INTO head
      FROM file_chunks WHERE storage_key = substr(path, 4)::uuid AND seq = 0;
    IF head IS NULL THEN
        RETURN;
    END IF;
    -- The cut may split a character: up to three of its bytes are dropped.
    FOR cut IN 0..3 LOOP
        BEGIN
            body := convert_from(substring(head FROM 1 FOR length(head) - cut), 'UTF8');
            EXIT;
        EXCEPTION WHEN character_not_in_repertoire OR untranslatable_character THEN
            IF length(head) < 262144 THEN
                RETURN;  -- not cut: not UTF-8 text
            END IF;
        END;
    END LOOP;
    IF body IS NOT NULL THEN
        INSERT INTO file_texts (file_id, file_path, source, words)
        VALUES (file, path, 'upload', to_tsvector('simple', body))
        ON CONFLICT (file_id) DO UPDATE SET file_path = EXCLUDED.file_path, source = EXCLUDED.source,
            language = EXCLUDED.language, words = EXCLUDED.words, indexed_at = EXCLUDED.indexed_at;
    END IF;
END
$$;

-- New content makes the old text wrong: it goes, and the new is indexed if
-- it is plain text. The upload succeeds either way.
CREATE OR REPLACE FUNCTION index_text_of_new_content() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM file_texts WHERE file_id = NEW.id;
    PERFORM index_uploaded_text(NEW.id, NEW.file_path, NEW.content_type);
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS files_index_text ON files;
CREATE TRIGGER files_index_text AFTER INSERT OR UPDATE OF file_path ON files
    FOR EACH ROW EXECUTE FUNCTION index_text_of_new_content();

-- Text files uploaded before this schema.
SELECT index_uploaded_text(id, file_path, content_type) FROM files
 WHERE NOT EXISTS (SELECT 1 FROM file_texts WHERE file_texts.file_id = files.id);
