//! The web UI's main journeys in headless Chromium (web/tests/journey.mjs,
//! playwright-core driving Debian's chromium) against the real app:
//! register (one user by keyboard only), upload, rename by keyboard,
//! replace, share, the grantee's view, download and notification, a
//! thumbnail kept across reloads, OCR text and content search, an admin's
//! quota change, revoke; screenshots and an axe-core audit of each screen
//! under .state/ui/.

use crate::helpers::{run_to_success, spawn_app};
use spindrive_testkit::{documents, workspace_root};

#[tokio::test]
async fn the_main_journeys_work_in_a_browser() {
    let app = spawn_app();
    let out = workspace_root().join(".state/ui").join(&app.db.name);
    std::fs::create_dir_all(&out).unwrap();
    let photo = out.join("photo.png");
    image::RgbImage::from_fn(640, 480, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    })
    .save(&photo)
    .unwrap();
    let letter = out.join("letter.png");
    let lines = [
        "Dear customer, thank you for your order.",
        "Please keep this letter with the pineapple invoice.",
    ]
    .map(str::to_owned);
    documents::render(&lines, 900, 160, 28.0, 30.0)
        .save(&letter)
        .unwrap();
    let stdout = run_to_success(
        tokio::process::Command::new("node")
            .arg(workspace_root().join("web/tests/journey.mjs"))
            .env("BASE_URL", app.host.url(""))
            .env("OUT_DIR", &out)
            .env("PHOTO", &photo)
            .env("LETTER", &letter),
        std::time::Duration::from_secs(300),
        "the journey",
    )
    .await;
    assert!(stdout.contains("journey ok"), "{stdout}");
    for screen in [
        "login",
        "files",
        "share",
        "preview",
        "notifications",
        "transform",
        "users",
    ] {
        for size in ["desktop", "phone"] {
            assert!(
                out.join(format!("{screen}-{size}.png")).exists(),
                "{screen} {size}"
            );
        }
    }
}
