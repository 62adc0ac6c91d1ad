// The main journeys through the UI in headless Chromium (Debian's, driven
// by playwright-core), against the app at BASE_URL; screenshots of each
// screen (desktop and phone) and an axe-core audit of each go to OUT_DIR.
// Run by the API test tests/api/ui.rs, which starts the app.
import { chromium } from "playwright-core";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";

const base = process.env.BASE_URL;
const out = process.env.OUT_DIR;
const photo = readFileSync(process.env.PHOTO);
const letter = readFileSync(process.env.LETTER);
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
    const sideways = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(sideways <= 0, `${screen} scrolls ${sideways}px sideways at ${size} size`);
  }
  await page.setViewportSize(DESKTOP);
  await page.evaluate(axe);
  // In both colour schemes: contrast differs.
  for (const colorScheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme });
    const { violations } = await page.evaluate(() => globalThis.axe.run(document, { resultTypes: ["violations"] }));
    const grave = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
    audits.push({ screen, colorScheme, violations: violations.map((v) => `${v.impact} ${v.id}`) });
    check(grave.length === 0, `${screen} (${colorScheme}): ${grave.map((v) => `${v.id}: ${v.help}`).join("; ")}`);
  }
  await page.emulateMedia({ colorScheme: null });
}

const row = (page, name) => page.locator("tbody tr", { hasText: name });

/** Tabs (and only tabs) until `target` has the focus, which must be
 * visibly marked; fails if it is never reached. */
async function tabTo(page, target) {
  for (let presses = 0; presses < 80; presses += 1) {
    await page.keyboard.press("Tab");
    if (await target.evaluate((element) => element === document.activeElement)) {
      // The app's own ring, not the browser's default.
      const ring = await target.evaluate((element) => {
        const style = getComputedStyle(element);
        return `${style.outlineStyle} ${style.outlineWidth} ${style.outlineColor}`;
      });
      check(ring === "solid 3px rgb(37, 99, 235)", `the focused control shows ${ring}`);
      return;
    }
  }
  throw new Error(`not reachable with Tab: ${target}`);
}

/** Opens a file's Transform dialog, asks for `kind`, and waits (bounded)
 * for its job to complete. */
async function transform(page, name, kind, choose = async () => {}) {
  await row(page, name).getByRole("button", { name: "Transform" }).click();
  const dialog = page.getByRole("dialog");
  await dialog.getByRole("combobox", { name: "Transformation" }).selectOption({ label: kind });
  await choose(dialog);
  await dialog.getByRole("button", { name: "Request" }).click();
  const jobs = dialog.getByRole("list", { name: "Transformations" });
  await jobs.getByText(`${kind}: complete`).waitFor({ timeout: 120_000 });
  return dialog;
}

async function signUp(page, username) {
  await page.goto(base);
  await page.getByRole("button", { name: "No account? Register" }).click();
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Email").fill(`${username}@example.com`);
  await page.getByLabel("Password").fill(`${username}-secret-pw`);
  await page.getByRole("button", { name: "Register" }).click();
  await page.getByText("Upload files").waitFor();
}

/** The same, with the keyboard only. */
async function signUpByKeyboard(page, username) {
  await page.goto(base);
  await tabTo(page, page.getByRole("button", { name: "No account? Register" }));
  await page.keyboard.press("Enter");
  await tabTo(page, page.getByLabel("Username"));
  await page.keyboard.type(username);
  await page.keyboard.press("Tab");
  await page.keyboard.type(`${username}@example.com`);
  await page.keyboard.press("Tab");
  await page.keyboard.type(`${username}-secret-pw`);
  await page.keyboard.press("Enter");
  await page.getByText("Upload files").waitFor();
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
const pages = {};
try {
  const ada = (pages.ada = await (await browser.newContext({ viewport: DESKTOP })).newPage());
  await ada.goto(base);
  await ada.getByRole("heading", { name: "Log in" }).waitFor();
  await audit(ada, "login");
  await signUp(ada, "ada");

  // Three files at once over a slow uplink, so that each upload's progress
  // is seen partway; each lands in the list.
  const network = await ada.context().newCDPSession(ada);
  const uplink = (bytesPerSecond) =>
    network.send("Network.emulateNetworkConditions", {
      offline: false,
      latency: 0,
      downloadThroughput: -1,
      uploadThroughput: bytesPerSecond,
    });
  await uplink(512 * 1024);
  const notes = Buffer.from("meeting notes\n".repeat(75_000));
  await ada.locator('input[type="file"][multiple]').setInputFiles([
    { name: "notes.txt", mimeType: "text/plain", buffer: notes },
    { name: "photo.png", mimeType: "image/png", buffer: photo },
    { name: "plan.txt", mimeType: "text/plain", buffer: Buffer.from("the plan") },
  ]);
  await ada.waitForFunction(() =>
    [...document.querySelectorAll("progress")].some((bar) => bar.value > 0 && bar.value < 1),
  );
  for (const name of ["notes.txt", "photo.png", "plan.txt"]) await row(ada, name).waitFor();
  await uplink(-1);
  await ada.locator('input[type="file"][multiple]').setInputFiles([
    { name: "letter.png", mimeType: "image/png", buffer: letter },
  ]);
  await row(ada, "letter.png").waitFor();
  // Finished uploads leave the progress list.
  await ada.getByRole("list", { name: "Uploads" }).waitFor({ state: "detached" });
  await audit(ada, "files");

  // Rename, with the keyboard only: focus lands in the name, Enter saves.
  await tabTo(ada, row(ada, "plan.txt").getByRole("button", { name: "Rename" }));
  await ada.keyboard.press("Enter");
  await ada.waitForFunction(() => document.activeElement?.getAttribute("name") === "name", null, { timeout: 5_000 });
  await ada.keyboard.press("ControlOrMeta+A");
  await ada.keyboard.type("plan v2.txt");
  await ada.keyboard.press("Enter");
  await row(ada, "plan v2.txt").waitFor();
  check((await ada.getByRole("dialog").count()) === 0, "the rename dialog stays open");

  // Replace its content: only if unchanged since listed (If-Match).
  const [chooser] = await Promise.all([
    ada.waitForEvent("filechooser"),
    row(ada, "plan v2.txt").getByRole("button", { name: "Replace" }).click(),
  ]);
  await chooser.setFiles({ name: "plan v3.txt", mimeType: "text/plain", buffer: Buffer.from("the better plan") });
  await row(ada, "plan v2.txt").getByText("15 B").waitFor();
  await ada.getByLabel("Sort").selectOption("name:desc");
  await ada.locator("tbody tr").first().getByText("plan v2.txt").waitFor();
  await ada.getByText(/ada · 1\.1 MB of .* used/).waitFor();

  // Share notes.txt with bob, who registers first.
  const bobPage = (pages.bob = await (await browser.newContext({ viewport: DESKTOP, acceptDownloads: true })).newPage());
  await signUpByKeyboard(bobPage, "bob");
  await row(ada, "notes.txt").getByRole("button", { name: "Share" }).click();
  const dialog = ada.getByRole("dialog");
  await dialog.getByLabel("Username").fill("bob");
  await dialog.getByLabel("Level").selectOption("read");
  await dialog.getByRole("button", { name: "Share", exact: true }).click();
  await dialog.getByRole("button", { name: "Revoke bob" }).waitFor();
  // An API error is shown as the API's message.
  await dialog.getByLabel("Username").fill("nobody");
  await dialog.getByRole("button", { name: "Share", exact: true }).click();
  const refusal = await dialog.getByRole("alert").textContent();
  check(/\w{4}/.test(refusal ?? ""), `the refusal reads ${refusal}`);
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

  // Ada's thumbnail: the job completes and the image is shown, then and
  // after a reload.
  await (await transform(ada, "photo.png", "Thumbnail")).getByRole("button", { name: "Close" }).click();
  // Its result, a new file, is listed without a reload.
  await row(ada, "photo (thumbnail 256).webp").waitFor();
  for (const reload of [false, true]) {
    if (reload) await ada.reload();
    const thumbnail = row(ada, "photo.png").locator("img");
    await thumbnail.waitFor();
    await ada.waitForFunction((img) => img.complete && img.naturalWidth > 0, await thumbnail.elementHandle());
  }

  // OCR: the letter's text is read, shown, and found by content search.
  const ocr = await transform(ada, "letter.png", "Read the text (OCR)", (dialog) =>
    dialog.getByLabel("Latin script").check(),
  );
  await ocr.getByRole("button", { name: "Show text" }).click();
  await ocr.getByLabel("Text read from letter.png").getByText(/pineapple invoice/).waitFor();
  await audit(ada, "transform");
  await ocr.getByRole("button", { name: "Close" }).click();
  await ada.getByLabel("Search inside files").check();
  await ada.getByLabel("Search", { exact: true }).fill("pineapple");
  // The list is searched once typing pauses: then only the letter is left.
  await row(ada, "notes.txt").waitFor({ state: "detached" });
  await row(ada, "letter.png").waitFor();
  for (const other of ["notes.txt", "photo.png", "plan v2.txt"]) {
    check((await row(ada, other).count()) === 0, `content search finds ${other}`);
  }
  await ada.getByLabel("Search inside files").uncheck();
  await ada.getByText("Nothing matches.").waitFor();
  await ada.getByLabel("Search", { exact: true }).fill("");
  await row(ada, "notes.txt").waitFor();

  // Delete, after a confirmation.
  ada.once("dialog", (confirmation) => confirmation.accept());
  await row(ada, "plan v2.txt").getByRole("button", { name: "Delete" }).click();
  await row(ada, "plan v2.txt").waitFor({ state: "detached" });

  // Ada, the first account and so an admin, gives bob a 5 MB quota.
  await ada.getByRole("link", { name: "Users" }).click();
  await ada.getByLabel("Quota of bob in MB (blank: the default)").fill("5");
  await ada.getByRole("button", { name: "Set the quota of bob" }).click();
  await row(ada, "bob").getByText("of 5.0 MB").waitFor();
  await audit(ada, "users");
  await bobPage.reload();
  await bobPage.getByText(/bob · .* of 5\.0 MB used/).waitFor();
  await ada.goBack();
  await row(ada, "notes.txt").waitFor();

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
  await bobPage.getByText("Nothing is shared with you yet.").waitFor();
  check((await row(bobPage, "notes.txt").count()) === 0, "bob still sees the revoked file");

  // Bob logs out: the login form, and his token no longer works.
  await bobPage.getByRole("button", { name: "Log out" }).click();
  await bobPage.getByRole("heading", { name: "Log in" }).waitFor();
  await bobPage.reload();
  await bobPage.getByRole("heading", { name: "Log in" }).waitFor();
} catch (failure) {
  // What each user saw when it failed.
  for (const [who, page] of Object.entries(pages)) {
    await page.screenshot({ path: `${out}/failure-${who}.png`, fullPage: true }).catch(() => undefined);
  }
  throw failure;
} finally {
  writeFileSync(`${out}/axe.json`, JSON.stringify(audits, null, 2));
  await browser.close();
}
console.log("journey ok");
