//! Text from documents, end to end: `pdf_text` and `ocr` jobs run by the
//! worker component (OCR with the real PP-OCRv5 models, inside wasm), on
//! documents the test renders itself with DejaVu Sans; and content search
//! over what they extracted and over plain-text uploads, ranked, paged and
//! permission-filtered.

use crate::files::encode;
use crate::helpers::{TestApp, User, assert_error, spawn_app, spawn_app_with};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use spindrive_domain::transform::SEARCH_LANGUAGES;
use spindrive_testkit::documents::{self, character_error_rate};
use spindrive_testkit::images::encoded;

impl TestApp {
    /// The ids of the files a `q` content search finds for `user`, best
    /// first, read page by page (`limit` per page).
    async fn search_content(&self, user: &User, q: &str, limit: usize) -> Vec<String> {
        let path = format!("/api/files?content=true&limit={limit}&q={}", encode(q));
        let (files, _) = self.every_page(&user.token, &path, "files").await;
        files
            .iter()
            .map(|f| f["id"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn text_of(&self, user: &User, file_id: &str) -> String {
        let (status, headers, body) = self.download(&user.token, file_id).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
        String::from_utf8(body).unwrap()
    }
}

/// Six lines of a letter, one with a word found nowhere else.
fn letter() -> Vec<String> {
    [
        "Dear customer, thank you for your order.",
        "Your parcel left our warehouse on Monday",
        "and should arrive within three days.",
        "The tracking code is written on the label.",
        "Please keep this letter with the pineapple invoice.",
        "Kind regards, the shipping team",
    ]
    .map(str::to_owned)
    .to_vec()
}

fn letter_png() -> Vec<u8> {
    png(documents::render(&letter(), 900, 340, 28.0, 30.0))
}

fn png(image: image::RgbImage) -> Vec<u8> {
    encoded(image::DynamicImage::ImageRgb8(image), image::ImageFormat::Png)
}

#[tokio::test]
async fn pdf_text_returns_every_page_exactly_and_makes_it_searchable() {
    let app = spawn_app();
    let owner = app.user("petra").await;
    let pages: Vec<Vec<String>> = (1..=3)
        .map(|page| {
            (1..=5)
                .map(|line| format!("Page {page} line {line}: minutes of the board (item {page}.{line})"))
                .collect()
        })
        .chain([vec!["Appendix: the zeppelin budget".to_owned()]])
        .collect();
    let pdf = app
        .upload_file(&owner, "minutes.pdf", documents::pdf(&pages))
        .await;
    let job = app.accepted(&owner, &pdf, "pdf_text", json!({})).await;
    assert_eq!(job["params"], json!({"search_language": "simple"}));
    let job = app.finished(&owner, &job).await;
    assert_eq!(job["status"], "complete", "{job}");
    let result = job["result_file_id"].as_str().unwrap();
    let expected = documents::text_of_pages(&pages);
    assert_eq!(app.text_of(&owner, result).await, expected);
    let (_, file) = app
        .call(
            Method::GET,
            &format!("/api/files/{result}"),
            Some(&owner.token),
            None,
        )
        .await;
    assert_eq!(file["file_name"], "minutes (text).txt");

    // Found by a word of its last page: the PDF and the text made of it.
    let mut found = app.search_content(&owner, "zeppelin", 10).await;
    found.sort();
    let mut both = vec![pdf.clone(), result.to_owned()];
    both.sort();
    assert_eq!(found, both);
    // A name search does not look inside.
    let (_, names) = app
        .call(Method::GET, "/api/files?q=zeppelin", Some(&owner.token), None)
        .await;
    assert_eq!(names["files"], json!([]));
}

#[tokio::test]
async fn ocr_reads_a_rendered_page_and_search_finds_it_only_for_readers() {
    let app = spawn_app();
    let owner = app.user("olga").await;
    let reader = app.user("rita").await;
    let stranger = app.user("sven").await;
    let scan = app.upload_file(&owner, "letter.png", letter_png()).await;
    let job = app
        .accepted(&owner, &scan, "ocr", json!({"languages": ["en"]}))
        .await;
    let job = app.finished(&owner, &job).await;
    assert_eq!(job["status"], "complete", "{job}");

    let text = app.text_of(&owner, job["result_file_id"].as_str().unwrap()).await;
    let cer = character_error_rate(&letter().join("\n"), &text);
    assert!(cer <= 0.02, "CER {cer}: {text}");
    let lines = job["result_details"]["lines"].as_array().unwrap();
    assert_eq!(lines.len(), letter().len(), "{job}");
    for line in lines {
        assert!(line["confidence"].as_f64().unwrap() > 0.5, "{line}");
        assert_eq!(line["box"].as_array().unwrap().len(), 4, "{line}");
    }
    assert_eq!(job["result_details"]["width"], 900);

    // The same letter scanned crooked and noisy.
    let crooked = documents::scanned(&documents::render(&letter(), 1000, 480, 28.0, 80.0), -5.0, 40, 3);
    let crooked = app.upload_file(&owner, "crooked.png", png(crooked)).await;
    let job = app
        .accepted(&owner, &crooked, "ocr", json!({"languages": ["en"]}))
        .await;
    let job = app.finished(&owner, &job).await;
    let text = app.text_of(&owner, job["result_file_id"].as_str().unwrap()).await;
    let cer = character_error_rate(&letter().join("\n"), &text);
    assert!(cer <= 0.05, "CER {cer}: {text}");

    // The word is only in the image's pixels.
    let found = app.search_content(&owner, "pineapple", 10).await;
    assert!(found.contains(&scan), "{found:?}");
    assert!(app.search_content(&stranger, "pineapple", 10).await.is_empty());
    assert!(app.search_content(&reader, "pineapple", 10).await.is_empty());
    let (status, _) = app.share(&owner.token, &scan, "rita", "read").await;
    assert_eq!(status, StatusCode::CREATED);
    // The reader sees the image; the text file stays the owner's.
    assert_eq!(
        app.search_content(&reader, "pineapple", 10).await,
        vec![scan.clone()]
    );
    let (_, shared) = app
        .call(
            Method::GET,
            "/api/files?content=true&q=pineapple&scope=shared",
            Some(&reader.token),
            None,
        )
        .await;
    assert_eq!(shared["files"][0]["id"], scan.as_str());
    assert!(
        app.search_content(&reader, "pineapple -invoice", 10)
            .await
            .is_empty()
    );

    // Lists leave the lines out; the job itself has them.
    let (_, list) = app
        .call(Method::GET, "/api/transformations", Some(&owner.token), None)
        .await;
    assert!(
        list["transformations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|job| job["result_details"].is_null())
    );

    // New content takes the old words with it.
    let blank = png(image::RgbImage::from_pixel(64, 64, image::Rgb([255, 255, 255])));
    let replaced = reqwest::Client::new()
        .put(app.host.url(&format!("/api/files/{scan}/content")))
        .bearer_auth(&owner.token)
        .header("content-type", "image/png")
        .body(blank)
        .send()
        .await
        .unwrap();
    assert_eq!(replaced.status(), StatusCode::OK);
    assert!(!app.search_content(&owner, "pineapple", 10).await.contains(&scan));
    assert!(app.search_content(&reader, "pineapple", 10).await.is_empty());
}

#[tokio::test]
async fn plain_text_is_searchable_ranked_and_forgotten_when_replaced() {
    let app = spawn_app();
    let user = app.user("tara").await;
    let upload = |name: &'static str, body: &'static str| {
        let app = &app;
        let token = user.token.clone();
        async move {
            let (status, file) = app
                .upload_typed(&token, name, "text/plain; charset=utf-8", body)
                .await;
            assert_eq!(status, StatusCode::CREATED, "{file}");
            file["id"].as_str().unwrap().to_owned()
        }
    };
    let by_name = upload("marmalade recipes.txt", "oranges, sugar, water").await;
    let once = upload("breakfast.txt", "toast with marmalade").await;
    let twice = upload("notes.txt", "marmalade, more marmalade, and jam").await;
    upload("other.txt", "nothing to see").await;
    // Bytes that are not UTF-8 are kept, just not indexed.
    let (status, _) = app
        .upload_typed(&user.token, "binary.txt", "text/plain", vec![0xffu8, 0xfe, 0x00])
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // A name match first, then by how often the word occurs; one per
    // page, each file once.
    let found = app.search_content(&user, "marmalade", 1).await;
    assert_eq!(found, vec![by_name.clone(), twice.clone(), once.clone()]);
    // Only a negation: no index can answer it, so names alone count.
    assert!(app.search_content(&user, "-marmalade", 10).await.is_empty());

    // New content drops the old words and brings its own.
    let replaced = reqwest::Client::new()
        .put(app.host.url(&format!("/api/files/{twice}/content")))
        .bearer_auth(&user.token)
        .header("content-type", "text/plain")
        .body("quince paste")
        .send()
        .await
        .unwrap();
    assert_eq!(replaced.status(), StatusCode::OK);
    assert_eq!(
        app.search_content(&user, "marmalade", 10).await,
        vec![by_name, once]
    );
    assert_eq!(app.search_content(&user, "quince", 10).await, vec![twice]);
}

#[tokio::test]
async fn documents_that_cannot_give_text_fail_with_reasons() {
    let app = spawn_app_with(|host| host.env("SPIN_VARIABLE_TRANSFORM_OCR_MODELS", "/no-models-here"));
    let user = app.user("una").await;
    let pdf = documents::pdf(&[vec!["locked text".to_owned()]]);
    let locked = app
        .upload_file(&user, "locked.pdf", documents::encrypted_pdf(&pdf, "secret"))
        .await;
    let plain_pdf = app.upload_file(&user, "plain.pdf", pdf).await;
    let png = app.upload_file(&user, "letter.png", letter_png()).await;
    let cases = [
        (&locked, "pdf_text", "the PDF is password-protected"),
        (&png, "pdf_text", "the file is not a PDF"),
        (&plain_pdf, "ocr", "PDF pages cannot be rasterised"),
        (&png, "ocr", "make models"),
    ];
    for (file, kind, reason) in cases {
        let job = app.accepted(&user, file, kind, json!({})).await;
        let job = app.finished(&user, &job).await;
        assert_eq!(job["status"], "failed", "{job}");
        assert!(job["error"].as_str().unwrap().contains(reason), "{job}");
    }
    // Everything else still works without the models.
    let job = app.accepted(&user, &png, "thumbnail", json!({"size": 64})).await;
    assert_eq!(app.finished(&user, &job).await["status"], "complete");
}

#[tokio::test]
async fn bad_search_and_job_parameters_are_422() {
    let app = spawn_app();
    let user = app.user("vera").await;
    let file = app
        .upload_file(&user, "a.pdf", documents::pdf(&[vec!["a".to_owned()]]))
        .await;
    for path in [
        "/api/files?content=true",
        "/api/files?content=yes&q=a",
        "/api/files?content=true&q=a&sort=name",
        "/api/files?q=a&sort=relevance",
    ] {
        let reply = app.call(Method::GET, path, Some(&user.token), None).await;
        assert_error(reply, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    }
    for (kind, params) in [
        ("pdf_text", json!({"search_language": "klingon"})),
        ("ocr", json!({"languages": ["tlh"]})),
        ("ocr", json!({"languages": "en"})),
        ("pdf_text", json!({"pages": 3})),
    ] {
        let reply = app.transform(&user, &file, kind, params).await;
        assert_error(reply, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    }
    // Every configuration a job may name exists in this PostgreSQL.
    for language in SEARCH_LANGUAGES {
        assert_eq!(app.sql(&format!("SELECT '{language}'::regconfig")), *language);
    }
}

#[tokio::test]
async fn a_search_cursor_only_continues_its_own_search() {
    let app = spawn_app();
    let user = app.user("wade").await;
    for name in ["a.txt", "b.txt"] {
        let (status, _) = app.upload_typed(&user.token, name, "text/plain", "walnut").await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (_, page) = app
        .call(
            Method::GET,
            "/api/files?content=true&q=walnut&limit=1",
            Some(&user.token),
            None,
        )
        .await;
    let cursor = page["next_cursor"].as_str().unwrap();
    let other = format!("/api/files?content=true&q=almond&limit=1&cursor={cursor}");
    let reply = app.call(Method::GET, &other, Some(&user.token), None).await;
    assert_error(reply, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    let names = format!("/api/files?q=walnut&limit=1&cursor={cursor}");
    let reply: (StatusCode, Value) = app.call(Method::GET, &names, Some(&user.token), None).await;
    assert_error(reply, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
}
