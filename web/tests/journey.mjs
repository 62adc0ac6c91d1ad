// The main journeys through the UI in headless Chromium (Debian's, driven
// by playwright-core), against the app at BASE_URL; screenshots of each
// screen (desktop and phone) and an axe-core audit of each go to OUT_DIR.
// Run by the API test tests/api/ui.rs, which starts the app.
import { chromium } from "playwright-core";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";

const base = process.env.BASE_URL;
const out = process.env.OUT_DIR;
const photo = readFileSync(process.env.PHOTO);
mkdirSync(out, { recursive: true });
const axe = readFileSync(new URL("../node_modules/axe-core/axe.min.js", import.meta.url), "utf8");
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const audits = [];

function check(condition, message) {
  if (!condition) throw new Error(message);
}

/** Screenshots at both sizes, and the serious or critical axe findings. */
async function audit(page, screen) {
  for (const [size, viewport] of [["desktop", DESKTOP], ["phone", PHONE]]) {
    await page.setViewportSize(viewport);
    await page.screenshot({ path: `${out}/${screen}-${size}.png`, fullPage: true });
  }
  await page.setViewportSize(DESKTOP);
  await page.evaluate(axe);
  const { violations } = await page.evaluate(() => globalThis.axe.run(document, { resultTypes: ["violations"] }));
  const grave = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  audits.push({ screen, violations: violations.map((v) => `${v.impact} ${v.id}`) });
  check(grave.length === 0, `${screen}: ${grave.map((v) => `${v.id}: ${v.help}`).join("; ")}`);
}

const row = (page, name) => page.locator("tbody tr", { hasText: name });

async function signUp(page, username) {
  await page.goto(base);
  await page.getByRole("button", { name: "No account? Register" }).click();
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Email").fill(`${username}@example.com`);
  await page.getByLabel("Password").fill(`${username}-secret-pw`);
  await page.getByRole("button", { name: "Register" }).click();
  await page.getByText("Upload files").waitFor();
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
try {
  const ada = await (await browser.newContext({ viewport: DESKTOP })).newPage();
  await ada.goto(base);
  await ada.getByRole("heading", { name: "Log in" }).waitFor();
  await audit(ada, "login");
  await signUp(ada, "ada");

  // Three files at once; each lands in the list.
  const notes = Buffer.from("meeting notes\n".repeat(1000));
  await ada.locator('input[type="file"]').setInputFiles([
    { name: "notes.txt", mimeType: "text/plain", buffer: notes },
    { name: "photo.png", mimeType: "image/png", buffer: photo },
    { name: "plan.txt", mimeType: "text/plain", buffer: Buffer.from("the plan") },
  ]);
  for (const name of ["notes.txt", "photo.png", "plan.txt"]) await row(ada, name).waitFor();
  // Finished uploads leave the progress list.
  await ada.getByRole("list", { name: "Uploads" }).waitFor({ state: "detached" });
  await audit(ada, "files");

  // Rename.
  ada.once("dialog", (dialog) => dialog.accept("plan v2.txt"));
  await row(ada, "plan.txt").getByRole("button", { name: "Rename" }).click();
  await row(ada, "plan v2.txt").waitFor();
  await ada.getByLabel("Sort").selectOption("name:desc");
  await ada.locator("tbody tr").first().getByText("plan v2.txt").waitFor();
  await ada.getByText(/ada · .* of .* used/).waitFor();

  // Share notes.txt with bob, who registers first.
  const bobPage = await (await browser.newContext({ viewport: DESKTOP, acceptDownloads: true })).newPage();
  await signUp(bobPage, "bob");
  await row(ada, "notes.txt").getByRole("button", { name: "Share" }).click();
  const dialog = ada.getByRole("dialog");
  await dialog.getByLabel("Username").fill("bob");
  await dialog.getByLabel("Level").selectOption("read");
  await dialog.getByRole("button", { name: "Share", exact: true }).click();
  await dialog.getByRole("button", { name: "Revoke bob" }).waitFor();
  await audit(ada, "share");
  await dialog.getByRole("button", { name: "Close" }).click();

  // Bob sees it under Shared, downloads the same bytes, cannot rename it,
  // and has been told.
  await bobPage.getByRole("button", { name: "Shared with me" }).click();
  await row(bobPage, "notes.txt").waitFor();
  const [saved] = await Promise.all([
    bobPage.waitForEvent("download"),
    row(bobPage, "notes.txt").getByRole("button", { name: "Download" }).click(),
  ]);
  check(readFileSync(await saved.path()).equals(notes), "the downloaded bytes differ");
  check((await row(bobPage, "notes.txt").getByRole("button", { name: "Rename" }).count()) === 0, "bob may rename");
  await row(bobPage, "notes.txt").getByRole("button", { name: "Preview" }).click();
  await bobPage.getByTitle("Preview of notes.txt").waitFor();
  await audit(bobPage, "preview");
  await bobPage.getByRole("dialog").getByRole("button", { name: "Close" }).click();
  await bobPage.reload();
  await bobPage.getByRole("button", { name: /Notifications/ }).click();
  await bobPage.getByRole("region", { name: "Notifications" }).getByText(/notes\.txt/).waitFor();
  await audit(bobPage, "notifications");

  // Ada's thumbnail: the job completes and the image is shown.
  await row(ada, "photo.png").getByRole("button", { name: "Thumbnail" }).click();
  const thumbnail = ada.getByRole("img", { name: "Thumbnail of photo.png" });
  await thumbnail.waitFor({ timeout: 60_000 });
  check((await thumbnail.evaluate((img) => img.naturalWidth)) > 0, "the thumbnail does not show");

  // Revoked: gone from bob's list.
  await row(ada, "notes.txt").getByRole("button", { name: "Share" }).click();
  await ada.getByRole("dialog").getByRole("button", { name: "Revoke bob" }).click();
  await ada.getByRole("dialog").getByRole("button", { name: "Revoke bob" }).waitFor({ state: "detached" });
  await bobPage.reload();
  await bobPage.getByText("Upload files").waitFor();
  const [listed] = await Promise.all([
    bobPage.waitForResponse((response) => response.url().includes("scope=shared")),
    bobPage.getByRole("button", { name: "Shared with me" }).click(),
  ]);
  check((await listed.json()).files.length === 0, "the API still lists the revoked file for bob");
  await bobPage.getByText("No files here yet").waitFor();
  check((await row(bobPage, "notes.txt").count()) === 0, "bob still sees the revoked file");
} finally {
  writeFileSync(`${out}/axe.json`, JSON.stringify(audits, null, 2));
  await browser.close();
}
console.log("journey ok");
