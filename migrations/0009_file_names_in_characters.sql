-- File names are 1 to 255 characters, as their varchar(255) column counts
-- them and as the API and its document say. Schema 1 also counted bytes
-- (octet_length), which refused long names in scripts whose characters take
-- several bytes: that check goes, whatever name PostgreSQL gave it.
DO $$
DECLARE
    byte_check text;
BEGIN
    FOR byte_check IN
        SELECT conname FROM pg_constraint
        WHERE conrelid = 'files'::regclass AND contype = 'c'
          AND pg_get_constraintdef(oid) LIKE '%octet_length(%file_name%'
    LOOP
        EXECUTE format('ALTER TABLE files DROP CONSTRAINT %I', byte_check);
    END LOOP;
END
$$;

ALTER TABLE files ADD CONSTRAINT files_file_name_not_empty CHECK (char_length(file_name) >= 1);
