//! Transformations end to end: the API records a job, Redis wakes the
//! worker, the worker writes the result as the requester's new file. Every
//! image is made by the test and every result decoded back.

use crate::helpers::{TestApp, User, assert_error, spawn_app, spawn_app_with, spawn_app_with_redis};
use futures::StreamExt;
use image::{DynamicImage, GenericImageView, Rgb, RgbImage, Rgba, RgbaImage};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use spindrive_testkit::RssSampler;
use spindrive_testkit::images::{encoded, jpeg_with_orientation, png_claiming};
use std::time::{Duration, Instant};

fn gradient(width: u32, height: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(width, height, |x, y| {
        Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    }))
}

fn animated_gif() -> Vec<u8> {
    use image::codecs::gif::GifEncoder;
    use image::{Delay, Frame};
    let mut bytes = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut bytes);
        for shade in [0u8, 200] {
            let frame = RgbaImage::from_pixel(90, 60, Rgba([shade, 0, 0, 255]));
            let delay = Delay::from_numer_denom_ms(100, 1);
            encoder
                .encode_frame(Frame::from_parts(frame, 0, 0, delay))
                .unwrap();
        }
    }
    bytes
}

impl TestApp {
    /// Uploads `bytes` as `name`; the new file's id.
    pub(crate) async fn upload_file(&self, user: &User, name: &str, bytes: Vec<u8>) -> String {
        let (status, file) = self.upload(&user.token, name, bytes).await;
        assert_eq!(status, StatusCode::CREATED, "{file}");
        file["id"].as_str().unwrap().to_owned()
    }

    /// Uploads a `width`×`height` gradient as a PNG named `name`.
    pub(crate) async fn upload_png(&self, user: &User, name: &str, width: u32, height: u32) -> String {
        let png = encoded(gradient(width, height), image::ImageFormat::Png);
        self.upload_file(user, name, png).await
    }

    pub(crate) async fn transform(
        &self,
        user: &User,
        file: &str,
        kind: &str,
        params: Value,
    ) -> (StatusCode, Value) {
        let path = format!("/api/files/{file}/transformations");
        let body = json!({ "type": kind, "params": params });
        self.call(Method::POST, &path, Some(&user.token), Some(body))
            .await
    }

    /// Asks for a transformation that must be accepted; the job.
    pub(crate) async fn accepted(&self, user: &User, file: &str, kind: &str, params: Value) -> Value {
        let (status, job) = self.transform(user, file, kind, params).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{job}");
        assert_eq!(job["status"], "pending", "{job}");
        job
    }

    /// Polls a job until it is complete or failed.
    pub(crate) async fn finished(&self, user: &User, job: &Value) -> Value {
        let path = format!("/api/transformations/{}", job["id"].as_str().unwrap());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, job) = self.call(Method::GET, &path, Some(&user.token), None).await;
            assert_eq!(status, StatusCode::OK, "{job}");
            if job["status"] == "complete" || job["status"] == "failed" {
                return job;
            }
            assert!(Instant::now() < deadline, "job never finished: {job}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The result of a complete job: its metadata and decoded image.
    async fn result(&self, user: &User, job: &Value) -> (Value, DynamicImage) {
        assert_eq!(job["status"], "complete", "{job}");
        let id = job["result_file_id"].as_str().unwrap();
        let (status, file) = self
            .call(Method::GET, &format!("/api/files/{id}"), Some(&user.token), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{file}");
        let (status, _, bytes) = self.download(&user.token, id).await;
        assert_eq!(status, StatusCode::OK);
        (file, image::load_from_memory(&bytes).expect("an image"))
    }
}

#[tokio::test]
async fn each_transformation_writes_a_new_file_of_the_requester() {
    let app = spawn_app();
    let ada = app.user("ada").await;
    let photo = app
        .upload_file(&ada, "photo.jpg", jpeg_with_orientation(gradient(400, 200), 6))
        .await;
    let transparent = DynamicImage::ImageRgba8(RgbaImage::from_fn(320, 240, |x, _| {
        Rgba([0, 0, 255, (x % 256) as u8])
    }));
    let logo = app
        .upload_file(&ada, "logo.png", encoded(transparent, image::ImageFormat::Png))
        .await;
    let anim = app.upload_file(&ada, "anim.gif", animated_gif()).await;
    let webp = app
        .upload_file(
            &ada,
            "pic.webp",
            encoded(gradient(120, 80), image::ImageFormat::WebP),
        )
        .await;

    let thumbnail = app
        .accepted(&ada, &photo, "thumbnail", json!({"size": 100}))
        .await;
    let resized = app.accepted(&ada, &logo, "resize", json!({"width": 64})).await;
    let covered = app
        .accepted(
            &ada,
            &webp,
            "resize",
            json!({"width": 50, "height": 50, "fit": "cover"}),
        )
        .await;
    let converted = app
        .accepted(&ada, &anim, "convert", json!({"format": "png"}))
        .await;
    let jpeg = app
        .accepted(&ada, &logo, "convert", json!({"format": "jpeg"}))
        .await;

    let job = app.finished(&ada, &thumbnail).await;
    let (file, image) = app.result(&ada, &job).await;
    assert_eq!(file["file_name"], "photo (thumbnail 100).webp");
    assert_eq!(file["content_type"], "image/webp");
    assert_eq!(file["owner"]["id"], ada.id, "{file}");
    assert_eq!(
        image.dimensions(),
        (50, 100),
        "EXIF orientation applied, then fitted"
    );
    assert_eq!(
        (job["attempts"].as_i64(), job["error"].is_null()),
        (Some(1), true)
    );

    let (file, image) = app.result(&ada, &app.finished(&ada, &resized).await).await;
    assert_eq!(file["file_name"], "logo (64xauto).png");
    assert_eq!(image.dimensions(), (64, 48));
    assert!(image.color().has_alpha(), "transparency kept");

    let (file, image) = app.result(&ada, &app.finished(&ada, &covered).await).await;
    assert_eq!(file["file_name"], "pic (50x50 cover).webp");
    assert_eq!(image.dimensions(), (50, 50));

    let (file, image) = app.result(&ada, &app.finished(&ada, &converted).await).await;
    assert_eq!(
        (file["file_name"].as_str(), file["content_type"].as_str()),
        (Some("anim.png"), Some("image/png"))
    );
    assert_eq!(image.dimensions(), (90, 60));
    assert_eq!(image.get_pixel(0, 0).0, [0, 0, 0, 255], "the first frame");

    let (file, image) = app.result(&ada, &app.finished(&ada, &jpeg).await).await;
    assert_eq!(file["content_type"], "image/jpeg");
    assert_eq!(
        (image.dimensions(), image.color().has_alpha()),
        ((320, 240), false)
    );

    // The lists: mine by status, and mine on one file.
    let (status, mine) = app
        .call(
            Method::GET,
            "/api/transformations?status=complete&limit=3",
            Some(&ada.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    assert_eq!(mine["transformations"].as_array().unwrap().len(), 3);
    let cursor = mine["next_cursor"].as_str().expect("a second page");
    let (_, rest) = app
        .call(
            Method::GET,
            &format!("/api/transformations?status=complete&limit=3&cursor={cursor}"),
            Some(&ada.token),
            None,
        )
        .await;
    assert_eq!(rest["transformations"].as_array().unwrap().len(), 2);
    assert!(rest["next_cursor"].is_null());
    let (_, on_logo) = app
        .call(
            Method::GET,
            &format!("/api/files/{logo}/transformations"),
            Some(&ada.token),
            None,
        )
        .await;
    assert_eq!(on_logo["transformations"].as_array().unwrap().len(), 2);
    let (_, pending) = app
        .call(
            Method::GET,
            "/api/transformations?status=pending",
            Some(&ada.token),
            None,
        )
        .await;
    assert_eq!(pending["transformations"], json!([]));

    // Each completion told ada, once.
    assert_eq!(
        app.sql(&format!(
            "SELECT count(*) FROM notifications WHERE user_id = {} AND kind = 'transformation_complete'",
            ada.id
        )),
        "5"
    );
}

#[tokio::test]
async fn a_reader_transforms_a_shared_file_into_a_file_of_their_own() {
    let app = spawn_app();
    let (ada, bob) = (app.user("ada").await, app.user("bob").await);
    let photo = app.upload_png(&ada, "photo.png", 300, 300).await;
    assert_eq!(
        app.share(&ada.token, &photo, "bob", "read").await.0,
        StatusCode::CREATED
    );
    let job = app.accepted(&bob, &photo, "thumbnail", json!({"size": 30})).await;
    let (file, _) = app.result(&bob, &app.finished(&bob, &job).await).await;
    assert_eq!(file["owner"]["id"], bob.id, "{file}");
    let size = file["size"].as_i64().unwrap();
    assert_eq!(
        app.sql(&format!("SELECT used_bytes FROM users WHERE id = {}", bob.id)),
        size.to_string(),
        "counted against the requester's quota"
    );
    // Ada sees neither bob's job nor its result.
    let job_path = format!("/api/transformations/{}", job["id"].as_str().unwrap());
    assert_error(
        app.call(Method::GET, &job_path, Some(&ada.token), None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let (_, on_photo) = app
        .call(
            Method::GET,
            &format!("/api/files/{photo}/transformations"),
            Some(&ada.token),
            None,
        )
        .await;
    assert_eq!(on_photo["transformations"], json!([]));
}

#[tokio::test]
async fn a_stranger_can_neither_create_nor_see_nor_list_jobs() {
    let app = spawn_app();
    let (ada, eve) = (app.user("ada").await, app.user("eve").await);
    let photo = app.upload_png(&ada, "photo.png", 40, 40).await;
    let job = app.accepted(&ada, &photo, "thumbnail", json!({"size": 16})).await;
    let not_found = |answer| assert_error(answer, StatusCode::NOT_FOUND, "not_found");
    not_found(
        app.transform(&eve, &photo, "thumbnail", json!({"size": 16}))
            .await,
    );
    let job_path = format!("/api/transformations/{}", job["id"].as_str().unwrap());
    not_found(app.call(Method::GET, &job_path, Some(&eve.token), None).await);
    not_found(
        app.call(
            Method::GET,
            &format!("/api/files/{photo}/transformations"),
            Some(&eve.token),
            None,
        )
        .await,
    );
    not_found(
        app.call(
            Method::GET,
            "/api/transformations/not-a-uuid",
            Some(&eve.token),
            None,
        )
        .await,
    );
    let (_, mine) = app
        .call(Method::GET, "/api/transformations", Some(&eve.token), None)
        .await;
    assert_eq!(mine["transformations"], json!([]));
    assert_error(
        app.call(Method::GET, "/api/transformations", None, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    app.finished(&ada, &job).await;
}

#[tokio::test]
async fn bad_requests_are_refused_and_bad_images_fail_with_a_reason() {
    let app = spawn_app();
    let ada = app.user("ada").await;
    let photo = app.upload_png(&ada, "photo.png", 40, 40).await;
    for (kind, params) in [
        ("sharpen", json!({})),
        ("thumbnail", json!({"size": 0})),
        ("thumbnail", json!({"size": 64, "quality": 9})),
        ("resize", json!({"width": 10, "fit": "cover"})),
        ("convert", json!({"format": "bmp"})),
    ] {
        let answer = app.transform(&ada, &photo, kind, params).await;
        assert_error(answer, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    }
    assert_eq!(app.sql("SELECT count(*) FROM transformation_jobs"), "0");

    let text = app.upload_file(&ada, "notes.txt", b"just words".to_vec()).await;
    let job = app.accepted(&ada, &text, "thumbnail", json!({"size": 64})).await;
    let failed = app.finished(&ada, &job).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"], "the file is not a JPEG, PNG, WebP or GIF image");
    assert!(failed["result_file_id"].is_null());

    // A 20,000 × 20,000 bomb and a header claiming tens of gigabytes are
    // refused from their headers, at once, and the host's memory hardly
    // moves (decoding either would take gigabytes).
    for (name, bomb) in [
        ("bomb.png", png_claiming(20_000, 20_000, 8, 6)),
        ("huge.png", png_claiming(100_000, 100_000, 16, 6)),
    ] {
        let file = app.upload_file(&ada, name, bomb).await;
        let before = app.host.rss_kib().unwrap();
        let sampler = RssSampler::start(app.host.pid());
        let started = Instant::now();
        let job = app.accepted(&ada, &file, "thumbnail", json!({"size": 64})).await;
        let failed = app.finished(&ada, &job).await;
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        let grown_mib = sampler.finish().saturating_sub(before) / 1024;
        assert!(grown_mib < 64, "the host grew by {grown_mib} MiB");
        let error = failed["error"].as_str().unwrap();
        assert!(
            error.contains("transformations accept at most 40000000 pixels"),
            "{error}"
        );
    }
    assert_eq!(
        app.sql(&format!(
            "SELECT count(*) FROM notifications WHERE user_id = {} AND kind = 'transformation_failed'",
            ada.id
        )),
        "3"
    );
}

#[tokio::test]
async fn a_job_runs_only_while_its_requester_may_read_the_source() {
    let app = spawn_app();
    let (ada, bob) = (app.user("ada").await, app.user("bob").await);
    let photo = app.upload_png(&ada, "photo.png", 40, 40).await;
    // Bob's job, recorded while he could read the file; his grant is gone
    // by the time a worker gets to it.
    let id = "00000000-0000-4000-8000-0000000000b0";
    app.sql(&format!(
        "INSERT INTO transformation_jobs (id, file_id, user_id, transformation_type, params) \
         VALUES ('{id}', '{photo}', {}, 'thumbnail', '{{\"size\": 8}}')",
        bob.id
    ));
    app.wake("transform", id, 1).await;
    let failed = app.finished(&bob, &json!({ "id": id })).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(
        failed["error"],
        "the source file is gone or you can no longer read it"
    );
    assert_eq!(app.sql("SELECT count(*) FROM files"), "1", "no result for bob");
}

#[tokio::test]
async fn duplicate_wake_ups_run_a_job_once() {
    let app = spawn_app();
    let ada = app.user("ada").await;
    let photo = app.upload_png(&ada, "photo.png", 600, 400).await;
    let job = app.accepted(&ada, &photo, "thumbnail", json!({"size": 64})).await;
    app.wake("transform", job["id"].as_str().unwrap(), 20).await;
    let done = app.finished(&ada, &job).await;
    assert_eq!(done["attempts"], 1, "{done}");
    // Let every duplicate be handled, then count results.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        app.sql("SELECT count(*) FROM files WHERE file_name = 'photo (thumbnail 64).webp'"),
        "1"
    );
}

#[tokio::test]
async fn deleting_the_source_ends_its_unfinished_jobs_failed() {
    let app = spawn_app();
    let ada = app.user("ada").await;
    let photo = app.upload_png(&ada, "photo.png", 40, 40).await;
    // A job a worker holds (claimed as the worker claims it).
    app.sql(&format!(
        "INSERT INTO transformation_jobs (id, file_id, user_id, transformation_type, params, status, attempts, run_id, lease_expires_at) \
         VALUES ('00000000-0000-4000-8000-000000000001', '{photo}', {}, 'thumbnail', '{{\"size\": 8}}', 'running', 1, \
                 gen_random_uuid(), (now() AT TIME ZONE 'utc') + interval '1 hour')",
        ada.id
    ));
    assert_eq!(app.delete_file(&ada.token, &photo).await, StatusCode::NO_CONTENT);
    let (_, job) = app
        .call(
            Method::GET,
            "/api/transformations/00000000-0000-4000-8000-000000000001",
            Some(&ada.token),
            None,
        )
        .await;
    assert_eq!(
        (
            job["status"].as_str(),
            job["error"].as_str(),
            job["file_id"].is_null()
        ),
        (Some("failed"), Some("the source file was deleted"), true),
        "{job}"
    );
    assert_eq!(
        app.sql("SELECT message FROM notifications WHERE kind = 'transformation_failed'"),
        "Your thumbnail failed: the source file was deleted"
    );
}

#[tokio::test]
async fn a_job_whose_worker_died_before_computing_runs_again_once() {
    let app = spawn_app();
    let ada = app.user("ada").await;
    let photo = app.upload_png(&ada, "photo.png", 40, 40).await;
    // Claimed by a worker that died reading the source: its lease is over.
    let id = "00000000-0000-4000-8000-0000000000d1";
    app.sql(&format!(
        "INSERT INTO transformation_jobs (id, file_id, user_id, transformation_type, params, status, attempts, \
                                          run_id, lease_expires_at, claimed_at) \
         VALUES ('{id}', '{photo}', {}, 'thumbnail', '{{\"size\": 8}}', 'running', 1, gen_random_uuid(), \
                 (now() AT TIME ZONE 'utc') - interval '1 second', (now() AT TIME ZONE 'utc') - interval '1 minute')",
        ada.id
    ));
    // Following the job wakes a worker; its sweep re-queues the job and it
    // runs again.
    let done = app.finished(&ada, &json!({ "id": id })).await;
    assert_eq!(
        (done["status"].as_str(), done["attempts"].as_i64()),
        (Some("complete"), Some(2)),
        "{done}"
    );
    assert_eq!(
        app.sql("SELECT count(*) FROM files WHERE file_name = 'photo (thumbnail 8).webp'"),
        "1",
        "one result"
    );
}

#[tokio::test]
async fn a_job_whose_worker_was_killed_while_computing_fails_once_its_limit_is_over() {
    // Three seconds per job: the computing lease ends two seconds later.
    let limit = |host: spindrive_testkit::HostBuilder| host.arg("--variable").arg("transform_max_seconds=3");
    let mut app = spawn_app_with(limit);
    let ada = app.user("ada").await;
    let big = encoded(gradient(6000, 6000), image::ImageFormat::Png);
    let photo = app.upload_file(&ada, "big.png", big).await;
    let job = app
        .accepted(
            &ada,
            &photo,
            "resize",
            json!({"width": 5000, "height": 5000, "fit": "exact"}),
        )
        .await;
    let id = job["id"].as_str().unwrap().to_owned();
    let computing = format!("SELECT computing_since IS NOT NULL FROM transformation_jobs WHERE id = '{id}'");
    let deadline = Instant::now() + Duration::from_secs(20);
    while app.sql(&computing) != "t" {
        assert!(Instant::now() < deadline, "the job never started computing");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    app.host.kill().unwrap();
    app.host = limit(spindrive_testkit::app_host(&app.db).unwrap())
        .start()
        .unwrap();
    // The same file would meet the same end: no second attempt.
    let failed = app.finished(&ada, &job).await;
    assert_eq!(
        (failed["status"].as_str(), failed["attempts"].as_i64()),
        (Some("failed"), Some(1)),
        "{failed}"
    );
    assert_eq!(
        failed["error"],
        "it stopped while computing: past its time or memory limit, or its worker died"
    );
    assert_eq!(app.sql("SELECT count(*) FROM files"), "1", "no result");
}

#[tokio::test]
async fn redis_restarting_during_a_burst_of_100_jobs_loses_none() {
    let redis = spindrive_testkit::RedisServer::start().unwrap();
    let app = spawn_app_with_redis(&redis.url().unwrap(), |host| host);
    let ada = app.user("ada").await;
    let photo = app.upload_png(&ada, "photo.png", 64, 64).await;
    let accepted = std::sync::Mutex::new(Vec::new());
    let unavailable = std::sync::atomic::AtomicUsize::new(0);
    let requester = |n: u32| {
        let (app, ada, photo, accepted, unavailable) = (&app, &ada, &photo, &accepted, &unavailable);
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let (status, job) = app
                    .transform(ada, photo, "thumbnail", json!({"size": 8 + n}))
                    .await;
                match status {
                    StatusCode::ACCEPTED => break accepted.lock().unwrap().push(job),
                    // While Redis is away: 503, try again shortly.
                    StatusCode::SERVICE_UNAVAILABLE => {
                        assert_eq!(job["error"]["code"], "transformations_unavailable", "{job}");
                        unavailable.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    other => panic!("{other}: {job}"),
                }
                assert!(Instant::now() < deadline, "never accepted");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let burst = async {
        // 8 requesters at a time.
        let mut jobs = futures::stream::iter(0..100).map(requester).buffer_unordered(8);
        while jobs.next().await.is_some() {}
    };
    let restart = async {
        while accepted.lock().unwrap().len() < 30 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        redis.stop().unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        redis.restart().unwrap();
    };
    tokio::join!(burst, restart);
    let jobs = accepted.into_inner().unwrap();
    assert_eq!(jobs.len(), 100);
    for job in &jobs {
        let done = app.finished(&ada, job).await;
        assert_eq!(done["status"], "complete", "{done}");
    }
    assert_eq!(
        app.sql("SELECT count(DISTINCT result_file_id) FROM transformation_jobs WHERE status = 'complete'"),
        "100"
    );
    eprintln!(
        "{} requests met 503 while Redis restarted",
        unavailable.load(std::sync::atomic::Ordering::Relaxed)
    );
}
